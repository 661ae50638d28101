// What the console reads from the replica's calls and units, as plain
// functions: which queue a call is in, its stage timer and the target it is
// held to, the queues' order, and how long each unit has been in its status
// (`UnitClock`, a replica observer: a unit re-sends an unchanged status
// periodically, so its `ts` says when it last spoke, not when its status began).

import { TARGETS, answerSeverity, dispatchSeverity, dispatchTarget, unitIsStale } from './targets.js';
import { BoundedMap } from '../bounded.js';
import { UnitStatusClock } from '../unitclock.js';

export const QUEUES = ['ringing', 'waiting', 'active', 'closed'];
const FIELD_STAGES = new Set(['dispatched', 'en_route', 'on_scene']);
const ENDS = ['closed', 'abandoned', 'transferred'];
/** Units whose status the clock remembers (a city has hundreds at most). */
const UNITS_KEPT = 5000;

/** A source time (RFC 3339) in ms, cached per string: the same stage times are read every second. */
const parsed = new BoundedMap(20_000);
export function ms(ts) {
  if (ts == null) return NaN;
  let v = parsed.get(ts);
  if (v === undefined) {
    v = Date.parse(ts);
    parsed.set(ts, v);
  }
  return v;
}

/** When the call's current stage began, ms. */
export function stageStart(call) {
  const t = ms(call.stages && call.stages[call.stage]);
  return Number.isFinite(t) ? t : ms(call.rx);
}

/** When the call was received, ms (its last event's receive time if no `received` came). */
export function receivedAt(call) {
  const t = ms(call.stages && call.stages.received);
  return Number.isFinite(t) ? t : ms(call.rx);
}

/** When the call ended (closed, abandoned or transferred), ms; NaN while open. */
export function endedAt(call) {
  let end = NaN;
  for (const s of ENDS) {
    const t = ms(call.stages && call.stages[s]);
    if (Number.isFinite(t) && !(end <= t)) end = t;
  }
  return end;
}

/** The queue a call belongs in at `now`, or null (an ended call older than the window). */
export function queueOf(call, now) {
  if (!call.open) {
    const end = endedAt(call);
    return Number.isFinite(end) && now - end > TARGETS.closedWindowS * 1000 ? null : 'closed';
  }
  if (call.stage === 'received') return 'ringing';
  if ((call.units && call.units.length) || FIELD_STAGES.has(call.stage)) return 'active';
  return 'waiting';
}

/**
 * The row's timer: `stageS`, seconds in the current stage; and the target
 * clock it is held to (`clockS`, `sev`, `kind`): a ringing call's wait against
 * the answer target, a waiting call's time since it was answered against its
 * priority's dispatch target. Active and ended calls have no target here.
 */
export function timerOf(call, queue, now) {
  const stageS = (now - stageStart(call)) / 1000;
  if (queue === 'ringing') return { stageS, clockS: stageS, sev: answerSeverity(stageS), kind: 'answer' };
  if (queue === 'waiting') {
    const from = ms(call.stages.answered);
    const clockS = (now - (Number.isFinite(from) ? from : receivedAt(call))) / 1000;
    return { stageS, clockS, sev: dispatchSeverity(clockS, call.priority), kind: 'dispatch', target: dispatchTarget(call.priority) };
  }
  return { stageS, clockS: null, sev: 'none', kind: 'stage' };
}

const byPriority = (a, b) => (a.priority || 9) - (b.priority || 9);
const byReceived = (a, b) => receivedAt(a) - receivedAt(b);
const byId = (a, b) => (a.call_id < b.call_id ? -1 : a.call_id > b.call_id ? 1 : 0);

/** Each queue's order: longest ringing first; waiting and active by priority, then oldest; closed newest first. */
const ORDER = {
  ringing: (a, b) => byReceived(a, b) || byId(a, b),
  waiting: (a, b) => byPriority(a, b) || byReceived(a, b) || byId(a, b),
  active: (a, b) => byPriority(a, b) || byReceived(a, b) || byId(a, b),
  closed: (a, b) => endedAt(b) - endedAt(a) || byId(a, b),
};

/** The calls of `city` (null: all) sorted into the four queues: `{ringing: [call], ...}`. */
export function sortQueues(replica, city, now) {
  const out = { ringing: [], waiting: [], active: [], closed: [] };
  for (const { value } of replica.get('call').values()) {
    if (city && value.city !== city) continue;
    const q = queueOf(value, now);
    if (q) out[q].push(value);
  }
  for (const q of QUEUES) out[q].sort(ORDER[q]);
  return out;
}

/** The replica's key of a call. */
export function callKey(call) {
  return `${call.city}/${call.call_id}`;
}

/**
 * How long each unit has been in its status. A call's `units` give the exact
 * time a unit reached its stage on that call; otherwise the clock keeps the
 * `ts` of the first status message that showed the current status.
 */
export class UnitClock extends UnitStatusClock {
  constructor() {
    super(UNITS_KEPT);
  }

  /**
   * Every unit of `city` with `{unit, status, call_id, sinceMs, ageS, stale}`,
   * the busy ones first. `onCalls`: unit id -> `{call_id, stage, since}` from the calls.
   */
  rows(replica, city, onCalls, now) {
    const rows = [];
    for (const [key, { value }] of replica.get('unit')) {
      if (city && value.city !== city) continue;
      const on = onCalls.get(value.unit);
      let since = this.since.get(key)?.at;
      if (on && on.stage === value.status && Number.isFinite(ms(on.since))) since = ms(on.since);
      if (!Number.isFinite(since)) since = ms(value.ts);
      const ageS = (now - since) / 1000;
      rows.push({ key, value, call_id: value.call_id || on?.call_id || null, sinceMs: since, ageS, stale: unitIsStale(value.status, ageS) });
    }
    const rank = (s) => ['dispatched', 'en_route', 'on_scene', 'returning', 'available', 'out_of_service'].indexOf(s);
    rows.sort((a, b) => rank(a.value.status) - rank(b.value.status) || (a.value.unit < b.value.unit ? -1 : 1));
    return rows;
  }
}

/** Unit id -> `{call_id, stage, since}` over the open calls' `units`. */
export function unitsOnCalls(replica, city) {
  const out = new Map();
  for (const { value: c } of replica.get('call').values()) {
    if (!c.open || !c.units || (city && c.city !== city)) continue;
    for (const u of c.units) out.set(u.unit, { call_id: c.call_id, stage: u.stage, since: u.since });
  }
  return out;
}
