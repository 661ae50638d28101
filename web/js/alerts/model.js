// The alerts as one screen sees them, derived from the replica's `alert`
// entities (it observes the replica). The server's rules decide what is an
// alert and where it stands in its ISA-18.2 lifecycle (active_unack,
// active_ack, cleared_unack, normal); this only arranges what the server
// sent: the live alerts this screen shows (`relevant`) with the
// unacknowledged first, then by priority, then the oldest raised first;
// grouped by `group` into incidents; the shelved ones apart; the suppressed
// ones only counted; counts by priority; the banner's alert; and the alarm
// rate (alerts raised in the last 10 minutes on this screen) against the
// ISA-18.2 / EEMUA 191 flood limit. It also keeps the transitions the
// ticker tells (raised, acknowledged, cleared), and calls `onRaise(alert)`
// for each alert newly raised while the screen watches (not one that was
// already there at connect): the chime. A raise is an alert with a new
// `raised_at`, whichever transition brought it: a rate-capped subscription
// (the wall's) may merge a raise with the update that followed it.
// Everything it remembers is bounded. It touches no DOM, so node can test it.

import { BoundedMap } from '../bounded.js';

/**
 * An alarm flood: 10 or more new alarms in 10 minutes for one operator
 * (ISA-18.2 / IEC 62682; EEMUA 191 calls more than 10 in 10 minutes
 * unmanageable). One screen stands for one operator here. The limit is the
 * server's `alerts.flood_per_10_min` (from /api/me), this one by default.
 */
export const FLOOD = Object.freeze({ limit: 10, windowMs: 10 * 60_000 });
/** Raises remembered for the rate (a flood of several hundred in 10 minutes still fits). */
const RAISES_KEPT = 2000;
/** Transitions kept for the ticker (it shows a handful; the rest is history). */
const NOTES_KEPT = 60;
/** Transitions remembered so that a replayed one (a resume, a new snapshot) is noted and chimed once. */
const SEEN_KEPT = 4000;
/** A `raised` older than this when it arrives (a catch-up after a long disconnect) no longer chimes. */
const CHIME_FRESH_MS = 60_000;
/** Alerts of these priorities chime when raised (1 critical, 2 high). */
const CHIME_MAX_PRIORITY = 2;
/** What an unknown priority counts as: below the lowest. */
const NO_PRIORITY = 5;
/** The order of the states among equal priorities for the banner: what needs a person first. */
const STATE_RANK = { active_unack: 0, cleared_unack: 1, active_ack: 2, normal: 3 };

/** A timestamp in ms (NaN when absent or unreadable). */
export function ms(ts) {
  return ts == null ? NaN : Date.parse(ts);
}

/** The replica's key of an alert. */
export function alertKey(a) {
  return `${a.city}/${a.alert_id}`;
}

/** The alert's priority, 1..4 (NO_PRIORITY when the server sent none). */
export function prio(a) {
  return Number.isInteger(a.priority) && a.priority >= 1 ? a.priority : NO_PRIORITY;
}

/** When the alert's condition last began, ms (its last transition's time when that is missing). */
export function raisedAt(a) {
  const t = ms(a.raised_at);
  return Number.isFinite(t) ? t : ms(a.ts);
}

/** Whether the alert waits for an acknowledgement (active or cleared). */
export function needsAck(a) {
  return a.state === 'active_unack' || a.state === 'cleared_unack';
}

/** Whether the alert's condition still holds. */
export function isActive(a) {
  return a.state === 'active_unack' || a.state === 'active_ack';
}

/** Whether the alert is shelved at `now` (until its `shelved_until`; an unreadable time counts as shelved). */
export function isShelved(a, now) {
  if (a.shelved_until == null) return false;
  return !(ms(a.shelved_until) <= now);
}

/** `{kind, id}` of an alert's `entity` ("intersection:simpang-pci" -> intersection, simpang-pci). */
export function entityOf(ref) {
  const s = String(ref || '');
  const at = s.indexOf(':');
  return at < 0 ? { kind: '', id: s } : { kind: s.slice(0, at), id: s.slice(at + 1) };
}

/** The feed family of a `feed_stale` alert ("feed:atcs/simpang-pci" -> atcs), else null. */
export function feedFamily(a) {
  const e = entityOf(a.entity);
  return e.kind === 'feed' ? e.id.split('/')[0] : null;
}

/** The dispatcher console's alerts: calls, the lines' answer target and surges, units, and their feeds. */
const DISPATCH_RULES = new Set(['call_unanswered', 'answer_target', 'unit_stage', 'call_surge']);
const DISPATCH_FEEDS = new Set(['calls', 'units']);
/** The traffic console's alerts: the junctions, their controllers and detectors, commands, and the ATCS feeds. */
const TRAFFIC_RULES = new Set(['controller_offline', 'controller_flashing', 'detector_fault', 'junction_congested', 'command_timed_out']);
const TRAFFIC_FEEDS = new Set(['atcs']);

/** Whether the dispatcher console shows `a`. */
export function dispatchRelevant(a) {
  return DISPATCH_RULES.has(a.rule) || (a.rule === 'feed_stale' && DISPATCH_FEEDS.has(feedFamily(a)));
}

/** Whether the traffic console shows `a` (its districts apart: see traffic/main.js). */
export function trafficRelevant(a) {
  return TRAFFIC_RULES.has(a.rule) || (a.rule === 'feed_stale' && TRAFFIC_FEEDS.has(feedFamily(a)));
}

const byText = (x, y) => (x < y ? -1 : x > y ? 1 : 0);

/** The list's order: waiting for an acknowledgement first, then priority, then the oldest raised. */
export function compareAlerts(a, b) {
  return needsAck(b) - needsAck(a) || prio(a) - prio(b) || (raisedAt(a) || 0) - (raisedAt(b) || 0) || byText(a.alert_id, b.alert_id);
}

/** The banner's order: the highest priority first, then what needs a person, then the oldest. */
export function compareBanner(a, b) {
  return prio(a) - prio(b) || (STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9) || (raisedAt(a) || 0) - (raisedAt(b) || 0) || byText(a.alert_id, b.alert_id);
}

/**
 * Incidents from a sorted list: alerts of one `group` (and city) together,
 * in the order of each incident's first alert in `list`, each as `{key,
 * group, alerts, top, unacked, priority}`.
 */
export function groupIncidents(list) {
  const by = new Map();
  for (const a of list) {
    const group = a.group || a.entity || a.alert_id;
    const key = `${a.city}|${group}`;
    let inc = by.get(key);
    if (!inc) by.set(key, (inc = { key, group, alerts: [], top: a, unacked: 0, priority: prio(a) }));
    inc.alerts.push(a);
    if (needsAck(a)) inc.unacked++;
    inc.priority = Math.min(inc.priority, prio(a));
  }
  return [...by.values()];
}

/**
 * The view of `alerts` (live values) at `now`, with `raised` new alerts in
 * the rate's window: `{list, incidents, shelved, suppressed, unacked, acked,
 * byPriority, top, rate: {n, limit, windowMin, flood}}`. `list` holds the
 * shown alerts (neither shelved nor suppressed nor back to normal).
 */
export function deriveView(alerts, now, raised = 0, flood = FLOOD) {
  const list = [];
  const shelved = [];
  let suppressed = 0;
  let unacked = 0;
  const byPriority = { 1: 0, 2: 0, 3: 0, 4: 0 };
  for (const a of alerts) {
    if (a.suppressed) {
      suppressed++;
      continue;
    }
    if (isShelved(a, now)) {
      shelved.push(a);
      continue;
    }
    if (a.state === 'normal') continue;
    list.push(a);
    if (needsAck(a)) unacked++;
    if (byPriority[a.priority] !== undefined) byPriority[a.priority]++;
  }
  list.sort(compareAlerts);
  shelved.sort((a, b) => (ms(a.shelved_until) || 0) - (ms(b.shelved_until) || 0) || compareAlerts(a, b));
  let top = null;
  for (const a of list) if (!top || compareBanner(a, top) < 0) top = a;
  return {
    list,
    incidents: groupIncidents(list),
    shelved,
    suppressed,
    unacked,
    acked: list.length - unacked,
    byPriority,
    top,
    rate: { n: raised, limit: flood.limit, windowMin: flood.windowMs / 60_000, flood: raised >= flood.limit },
  };
}

export class AlertModel {
  /**
   * `replica`; `city` shown (null: any); `relevant(alert)`: whether this
   * screen shows it; `now()`: the server's clock, ms; `changed()`: something
   * shown changed (notes); `onRaise(alert)`: a new alert was raised live.
   */
  constructor({ replica, city = null, relevant = () => true, now, changed = () => {}, onRaise = null, floodLimit = FLOOD.limit }) {
    this.replica = replica;
    this.flood = { limit: floodLimit > 0 ? floodLimit : FLOOD.limit, windowMs: FLOOD.windowMs };
    this.city = city;
    this.relevant = relevant;
    this.now = now;
    this.changed = changed;
    this.onRaise = onRaise;
    /** `{alert key}@{raised_at}` -> when raised, ms: the rate's memory. */
    this.raises = new BoundedMap(RAISES_KEPT);
    /** Transitions already handled (event ids) and notes already made. */
    this.seen = new BoundedMap(SEEN_KEPT);
    /** The ticker's transitions, oldest first: `{id, at, transition, alert}`. */
    this.notes = { items: [], seq: 0 };
    this.version = 0;
    this.cache = { stamp: null, view: null };
  }

  /** Whether this screen shows `a` (its city, its rules). */
  visible(a) {
    return !!a && (!this.city || a.city === this.city) && !!this.relevant(a);
  }

  /** The live alerts this screen shows, suppressed and shelved ones included (see `view`). */
  alerts() {
    const out = [];
    for (const { value } of this.replica.get('alert').values()) if (this.visible(value)) out.push(value);
    return out;
  }

  /** The current view (`deriveView`), made again when an alert changed or the second turned. */
  view() {
    const now = this.now();
    const stamp = `${this.version}/${Math.floor(now / 1000)}`;
    if (this.cache.stamp !== stamp) this.cache = { stamp, view: deriveView(this.alerts(), now, this.rate(now), this.flood) };
    return this.cache.view;
  }

  /** New alerts raised on this screen in the flood window before `now`. */
  rate(now = this.now()) {
    const since = now - this.flood.windowMs;
    let n = 0;
    for (const [k, t] of this.raises) {
      if (t > since) n++;
      // Older than the window (and a minute of clock skew): of no more use.
      else if (t < since - 60_000) this.raises.delete(k);
    }
    return n;
  }

  /** Replica observer hook: an alert changed from `old` to `value` (either may be null). */
  update(kind, key, old, value, fromSnapshot) {
    if (kind !== 'alert') return;
    this.version++;
    if (!value) {
      // Gone (back to normal): the end, unless a cleared transition said so already.
      const now = this.now();
      if (old && this.visible(old) && !old.suppressed && !isShelved(old, now) && old.state !== 'normal') this.note('cleared', key, old, now);
      return;
    }
    if (!this.visible(value)) return;
    const id = value.event_id || `${key}@${value.ts}`;
    if (this.seen.has(id)) return;
    this.seen.set(id, true);
    const now = this.now();
    if (value.suppressed || isShelved(value, now)) return;
    // A raise is known by its alert and `raised_at`, whatever transition brought it
    // (a rate-capped subscription may merge a raise with the update after it).
    const raisedKey = `raise:${key}@${value.raised_at}`;
    const newRaise = !this.seen.has(raisedKey);
    const at = raisedAt(value);
    if (newRaise) {
      this.seen.set(raisedKey, true);
      // The rate counts each raise once, however it became known (live or in a snapshot).
      if (Number.isFinite(at)) this.raises.set(raisedKey, at);
      this.note('raised', key, value, Number.isFinite(at) ? at : now);
    }
    const tr = value.transition;
    const ts = ms(value.ts);
    const when = Number.isFinite(ts) ? ts : now;
    if (tr === 'acknowledged') this.note('acknowledged', key, value, when);
    else if (tr === 'cleared' || tr === 'normal') this.note('cleared', key, value, when);
    // The chime: a raise seen live, still waiting for a person, recent, of priority 1 or 2.
    if (!newRaise || fromSnapshot || !this.onRaise || !needsAck(value) || prio(value) > CHIME_MAX_PRIORITY) return;
    if (!(now - (Number.isFinite(at) ? at : when) <= CHIME_FRESH_MS)) return;
    this.onRaise(value);
  }

  /** A ticker note, once per alert, raise and kind of transition. */
  note(transition, key, a, at) {
    const id = `${transition}:${key}@${a.raised_at}`;
    if (this.seen.has(id)) return;
    this.seen.set(id, true);
    const items = this.notes.items;
    items.push({ id, seq: ++this.notes.seq, at, transition, alert: a });
    items.sort((x, y) => x.at - y.at || x.seq - y.seq);
    if (items.length > NOTES_KEPT) items.splice(0, items.length - NOTES_KEPT);
    this.changed();
  }
}
