// Unit recommendations for the selected call
// (`GET /api/calls/{city}/{call_id}/recommend`: at most three free units of
// the call's agency, quickest first, with ETA, distance, the delay at the
// signalised junctions on the way and the route). Asked for when a call is
// selected and again when what the server ranks on changes in its
// projection (category, priority, position, units), and when a recommended
// unit stops being free. Requests are debounced and never more than one per
// call every MIN_INTERVAL_MS; an answer older than one already shown is
// dropped. Only an open call that is answered and has a position has a
// recommendation (the server answers 409 otherwise).
//
// `pick(call_id, n)` turns `D` / `D1`..`D3` into a unit, or refuses (the
// command sends nothing) when the recommendation is for another call, not
// there yet, made before the call's latest change, empty or short, or when
// its unit is no longer free. Nothing here touches the DOM.

import { get } from '../api.js';
import { BoundedMap } from '../bounded.js';
import { callKey } from './model.js';

/** At most one request per call this often, ms. */
export const MIN_INTERVAL_MS = 2000;
/** Changes of the selected call closer than this share one request, ms. */
const CHANGE_DEBOUNCE_MS = 300;
/** Moving the selection through the queues (j/k) asks only for where it stops, ms. */
const SELECT_DEBOUNCE_MS = 200;
/** Calls whose last request time is remembered (for the per-call limit). */
const CALLS_KEPT = 500;
/** Unit statuses the server recommends from. */
const FREE = new Set(['available', 'returning']);

/** What the server ranks on: a recommendation made for another value of this is out of date. */
export function signature(call) {
  const c = call.caller;
  const units = (call.units || []).map((u) => u.unit).sort();
  return JSON.stringify([call.category ?? null, call.priority ?? null, c ? [c.lat, c.lon] : null, units]);
}

/** Why a call has no recommendation (null: it may have one): 'closed', 'unanswered', 'no_position'. */
export function ineligible(call) {
  if (!call.open) return 'closed';
  if (call.stage === 'received') return 'unanswered';
  if (!call.caller || !Number.isFinite(call.caller.lat) || !Number.isFinite(call.caller.lon)) return 'no_position';
  return null;
}

export class Recommender {
  /**
   * `replica`; `call()`: the selected call's projection or null;
   * `allowed`: the session may dispatch (the endpoint is for dispatchers and
   * supervisors); `changed()`: something shown changed.
   */
  constructor({ replica, call, allowed, changed }) {
    this.replica = replica;
    this.call = call;
    this.allowed = allowed;
    this.changed = changed;
    /**
     * For the selected call: `{key, city, call_id, sig, reason, answer,
     * answerSig, at, error, status, loading, seqShown}`. `answer` is the
     * server's last answer, made for a call whose signature was `answerSig`,
     * at `at` (Date.now()).
     */
    this.state = null;
    /** Call key -> when its last request left (Date.now()). */
    this.lastAsked = new BoundedMap(CALLS_KEPT);
    this.seq = 0;
    this.timer = null;
    this.requests = 0;
  }

  /** The selection moved to `call` (a projection), or to nothing. */
  select(call) {
    clearTimeout(this.timer);
    if (!call) {
      this.state = null;
      return;
    }
    this.state = {
      key: callKey(call),
      city: call.city,
      call_id: call.call_id,
      sig: signature(call),
      reason: this.reasonOf(call),
      answer: null,
      answerSig: null,
      at: 0,
      error: null,
      status: null,
      loading: false,
      seqShown: 0,
    };
    this.schedule(SELECT_DEBOUNCE_MS);
  }

  reasonOf(call) {
    return this.allowed ? ineligible(call) : 'not_allowed';
  }

  /** The selected call's projection changed (or came back after a snapshot). */
  callChanged(call) {
    const st = this.state;
    if (!st || !call || callKey(call) !== st.key) return;
    const sig = signature(call);
    const reason = this.reasonOf(call);
    if (sig === st.sig && reason === st.reason) return;
    st.sig = sig;
    st.reason = reason;
    this.changed();
    this.schedule(CHANGE_DEBOUNCE_MS);
  }

  /** A unit's status arrived: a recommended unit that is no longer free calls for a new ranking. */
  unitChanged(value) {
    const st = this.state;
    if (!st || !st.answer || !value) return;
    const rec = st.answer.units.find((u) => u.unit === value.unit);
    if (!rec || (value.city && value.city !== st.city)) return;
    if (!this.unitFree(value)) {
      this.changed();
      this.schedule(CHANGE_DEBOUNCE_MS);
    }
  }

  /** The server's rule: a unit available or returning may be sent. */
  unitFree(value) {
    return FREE.has(value.status);
  }

  /** The live value of a recommended unit (null when the replica has none). */
  liveUnit(unit) {
    return this.state ? this.replica.get('unit').get(`${this.state.city}/${unit}`)?.value || null : null;
  }

  /** True when the answer shown was made for the call as it is now. */
  current() {
    const st = this.state;
    return !!(st && st.answer && st.answerSig === st.sig);
  }

  /** Asks again soon: after `delay`, and not before the call's per-call limit. */
  schedule(delay) {
    clearTimeout(this.timer);
    const st = this.state;
    if (!st || st.reason) return;
    const last = this.lastAsked.get(st.key) ?? -Infinity;
    const wait = Math.max(delay, last + MIN_INTERVAL_MS - Date.now());
    this.timer = setTimeout(() => this.fetch(st), wait);
  }

  async fetch(st) {
    const call = this.call();
    if (st !== this.state || !call || callKey(call) !== st.key) return;
    st.sig = signature(call);
    st.reason = this.reasonOf(call);
    if (st.reason) {
      this.changed();
      return;
    }
    // Another request inside the limit (a second trigger while this one waited) waits its turn.
    const last = this.lastAsked.get(st.key) ?? -Infinity;
    if (Date.now() - last < MIN_INTERVAL_MS) {
      this.schedule(0);
      return;
    }
    this.lastAsked.set(st.key, Date.now());
    const seq = ++this.seq;
    const sig = st.sig;
    st.loading = true;
    this.requests++;
    this.changed();
    let answer = null;
    let error = null;
    let status = null;
    try {
      answer = await get(`/api/calls/${encodeURIComponent(st.city)}/${encodeURIComponent(st.call_id)}/recommend`);
    } catch (e) {
      if (e.login) return;
      error = e.message;
      status = e.status;
    }
    // Another call selected meanwhile, or a later request already answered: this one is out of date.
    if (st !== this.state || seq < st.seqShown) return;
    st.seqShown = seq;
    if (seq === this.seq) st.loading = false;
    if (answer && answer.call_id === st.call_id && Array.isArray(answer.units)) {
      st.answer = answer;
      st.answerSig = sig;
      st.at = Date.now();
      st.error = null;
      st.status = null;
    } else {
      st.error = error || 'bad answer';
      st.status = status;
      // The server says the call has no position (409) or is unknown (404): what we had no longer holds.
      if (status === 409 || status === 404) st.answer = null;
    }
    this.changed();
    // The call changed while we asked: ask again for its new state.
    if (st.sig !== sig) this.schedule(CHANGE_DEBOUNCE_MS);
  }

  /**
   * The unit of recommendation `n` (1-based) for `call_id`:
   * `{unit, rec}` or `{error, vars}` (a key of `err.*`).
   */
  pick(call_id, n) {
    const st = this.state;
    if (!st || st.call_id !== call_id) return { error: 'rec_not_selected', vars: { call: call_id } };
    if (st.reason) return { error: `rec_${st.reason}`, vars: { call: call_id } };
    if (!st.answer) {
      if (st.error) return { error: 'rec_failed', vars: { call: call_id, error: st.error } };
      return { error: 'rec_none', vars: { call: call_id } };
    }
    if (!this.current()) return { error: 'rec_stale', vars: { call: call_id } };
    const units = st.answer.units;
    if (!units.length) return { error: 'rec_empty', vars: { call: call_id, agency: st.answer.agency || '' } };
    if (n > units.length) return { error: 'rec_short', vars: { n, have: units.length } };
    const rec = units[n - 1];
    const live = this.liveUnit(rec.unit);
    if (live && !this.unitFree(live)) {
      this.schedule(0);
      return { error: 'rec_taken', vars: { unit: rec.unit.toUpperCase(), status: live.status, call: live.call_id ? ` ${live.call_id}` : '' } };
    }
    return { unit: rec.unit, rec };
  }
}
