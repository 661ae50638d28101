// The console's own state, shared by its panels: the selected call (by city
// and call id, never by row position), the focused queue, the detail's
// timeline (`GET /api/calls/{city}/{call_id}`, fetched again whenever the
// call's update arrives on the socket), its unit recommendation (`rec`, see
// recommend.js), the command line's message and history, and `run(text)`,
// which parses a command, resolves `D` / `D1`..`D3` to a recommended unit and
// hands it to Actions. Nothing here moves keyboard focus: only the keys and
// clicks in keys.js do.

import { get } from '../api.js';
import { parse } from './commands.js';
import { QUEUES, callKey, sortQueues } from './model.js';
import { Actions } from './actions.js';
import { TARGETS } from './targets.js';
import { Recommender } from './recommend.js';

/** Commands remembered for ↑/↓ in the command line. */
const HISTORY_KEPT = 50;
/** Updates of the selected call arriving closer than this share one timeline fetch, ms. */
const DETAIL_DEBOUNCE_MS = 150;

export class Console {
  constructor({ replica, city, now, t, i18n, invalidate, mayDispatch }) {
    this.replica = replica;
    this.city = city;
    this.now = now;
    this.t = t;
    this.i18n = i18n;
    this.invalidate = invalidate;
    /** `{city, call_id, key}` of the selected call, or null. */
    this.sel = null;
    this.focusQueue = 0;
    /** Per queue, the row index last selected there (where j/k resumes when the selection is elsewhere). */
    this.lastIndex = QUEUES.map(() => 0);
    /** Set when the selection moved by key or click: the queues panel scrolls it into view once. */
    this.reveal = false;
    /** `{key, call, events, error, loading}` for the selected call. */
    this.detail = null;
    this.detailTimer = null;
    this.detailSeq = 0;
    /** The command line's message: `{text, sev}` ('crit' an error, 'ok' a result). */
    this.message = null;
    this.history = [];
    this.actions = new Actions({ now, changed: () => invalidate('pending') });
    this.cache = { at: -1, updates: -1, queues: null };
    /** The selected call's unit recommendation. */
    this.rec = new Recommender({ replica, call: () => this.selectedCall(), allowed: !!mayDispatch, changed: () => invalidate('recommend') });
    /** Elements the keys reach, set by the panels: `queues` (the four lists), `input`, `detail` and its `timeline`. */
    this.el = { queues: [], input: null, detail: null, timeline: null };
    /** Picking the caller's position on the map (`start()`, `at(lat, lon)`, `selectionChanged()`), set by recommendations.js. */
    this.picker = null;
  }

  /** Replica observer hook: confirmations, the selected call's timeline and recommendation. */
  update(kind, key, old, value) {
    if (kind === 'unit') {
      this.rec.unitChanged(value);
      return;
    }
    if (kind !== 'call') return;
    if (value) this.actions.observe(value);
    if (this.sel && key === this.sel.key) {
      this.loadDetail();
      this.rec.callChanged(value);
    }
  }

  /** Re-reads the timeline after a snapshot (a reconnect may have missed updates of the selected call). */
  endSnapshot() {
    if (this.sel) {
      this.loadDetail();
      this.rec.callChanged(this.selectedCall());
    }
  }

  /** The four queues now (recomputed when a call changed or the second turned). */
  queues() {
    const second = Math.floor(this.now() / 1000);
    const updates = this.replica.stats.updates + this.replica.stats.snapshots;
    if (this.cache.at !== second || this.cache.updates !== updates) {
      this.cache = { at: second, updates, queues: sortQueues(this.replica, this.city, this.now()) };
    }
    return this.cache.queues;
  }

  /** The selected call's projection (null when none, or when it left the live state). */
  selectedCall() {
    return this.sel ? this.replica.get('call').get(this.sel.key)?.value || null : null;
  }

  /** A known call by id, any case (the console's city first). */
  findCall(id) {
    if (!id) return null;
    const calls = this.replica.get('call');
    if (this.city) {
      const exact = calls.get(`${this.city}/${id}`);
      if (exact) return exact.value;
    }
    const low = id.toLowerCase();
    for (const { value } of calls.values()) {
      if (value.call_id.toLowerCase() === low && (!this.city || value.city === this.city)) return value;
    }
    return null;
  }

  /** A known unit's id from what was typed (any case), else what was typed. */
  unitId(token) {
    const low = token.toLowerCase();
    for (const { value } of this.replica.get('unit').values()) {
      if (value.unit.toLowerCase() === low && (!this.city || value.city === this.city)) return value.unit;
    }
    return token;
  }

  /** Selects a call (a projection), e.g. from a key or a click. */
  select(call) {
    const key = callKey(call);
    if (this.sel && this.sel.key === key) return;
    this.sel = { city: call.city, call_id: call.call_id, key };
    if (this.picker) this.picker.selectionChanged();
    this.reveal = true;
    this.detail = { key, call: null, events: null, error: null, loading: true };
    this.loadDetail(0);
    this.rec.select(call);
    this.invalidate('dispatch');
  }

  /** Fetches the selected call's timeline, soon (debounced); the newest answer wins. */
  loadDetail(delay = DETAIL_DEBOUNCE_MS) {
    clearTimeout(this.detailTimer);
    this.detailTimer = setTimeout(async () => {
      const sel = this.sel;
      if (!sel) return;
      const seq = ++this.detailSeq;
      let answer = null;
      let error = null;
      try {
        answer = await get(`/api/calls/${encodeURIComponent(sel.city)}/${encodeURIComponent(sel.call_id)}`);
      } catch (e) {
        if (e.login) return;
        error = e.message;
      }
      if (seq !== this.detailSeq || !this.sel || this.sel.key !== sel.key) return;
      const keep = this.detail && this.detail.key === sel.key ? this.detail : {};
      this.detail = {
        key: sel.key,
        call: answer ? answer.call : keep.call || null,
        events: answer ? answer.events || [] : keep.events || null,
        error,
        loading: false,
      };
      this.invalidate('detail');
    }, delay);
  }

  /** Shows a message beside the command line. */
  say(text, sev) {
    this.message = text ? { text, sev } : null;
    this.invalidate('pending');
  }

  /**
   * Runs one command line as typed; resolves when the POST has answered (at
   * once for a line that does not parse): `{ok, status?, action_id?, error?}`.
   */
  async run(text) {
    const line = String(text).trim();
    if (line && this.history[this.history.length - 1] !== line) {
      this.history.push(line);
      if (this.history.length > HISTORY_KEPT) this.history.shift();
    }
    const t = this.t;
    const cmd = parse(line, {
      selected: this.sel ? this.sel.call_id : null,
      callId: (token) => this.findCall(token)?.call_id || null,
      unitId: (token) => this.unitId(token),
      duplicates: (id) => this.findCall(id)?.possible_duplicates || [],
    });
    if (cmd.error) {
      const error = t(`err.${cmd.error}`, cmd.vars);
      this.say(error, 'crit');
      return { ok: false, error };
    }
    const call = this.findCall(cmd.call_id);
    let note = null;
    if (cmd.pick) {
      // `D` / `D1`..`D3`: the selected call's recommendation, as it stands now, or nothing at all.
      const got = this.rec.pick(call ? call.call_id : cmd.call_id, cmd.pick);
      if (got.error) {
        const vars = { ...got.vars };
        if (vars.status) vars.status = this.i18n.t(`unit_status.${vars.status}`);
        const error = `${t(`err.${got.error}`, vars)} · ${t('err.sent_nothing')}`;
        this.say(error, 'crit');
        return { ok: false, error };
      }
      // A recommendation stays as it was until the dispatch comes back: a second D must not send the same unit again.
      const id = call ? call.call_id : cmd.call_id;
      if (this.actions.forCall(id).some((p) => p.action === 'dispatch' && p.units && p.units.includes(got.unit))) {
        const error = `${t('err.rec_pending', { unit: got.unit.toUpperCase(), call: id })} · ${t('err.sent_nothing')}`;
        this.say(error, 'crit');
        return { ok: false, error };
      }
      cmd.fields = { ...cmd.fields, units: [got.unit] };
      note = t('rec_sending', { n: cmd.pick, unit: got.unit.toUpperCase(), eta: this.i18n.timer(got.rec.eta_s), call: call ? call.call_id : cmd.call_id });
    }
    const city = call ? call.city : this.city;
    if (!city) {
      const error = t('err.no_city');
      this.say(error, 'crit');
      return { ok: false, error };
    }
    const call_id = call ? call.call_id : cmd.call_id;
    this.say(note, note ? 'info' : null);
    const result = await this.actions.submit({ city, call_id, action: cmd.action, fields: cmd.fields });
    if (!result.ok) {
      const error = result.status === 0 ? t('err.no_answer', { n: TARGETS.retryMs.length + 1 }) : result.error;
      this.say(t('failed', { act: t(`btn.${cmd.action}`), call: call_id, error }), 'crit');
    }
    return result;
  }
}
