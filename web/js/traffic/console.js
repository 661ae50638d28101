// The traffic console's own state, shared by its panels: the desk (the
// announcement templates, the limits commands are held to, the junctions in
// automatic mode; `GET /api/traffic/{city}/desk`, read again now and then),
// the officer's scope and the district filter, the board's order, its
// highlighted row, the junction opened in the detail and its selected
// approach (all by key, never by row position), the message line, and the
// actions: `command(action, body)` and `setAuto(enabled, reason)` for the
// opened junction. Nothing here moves keyboard focus: only keys.js and the
// panels' click handlers do.

import { get, post } from '../api.js';
import { Commands } from './commands.js';
import { UnitStatusClock } from '../unitclock.js';
import { SORTS, corridorHolds, feedKey, junctionView, scopeOf, sortRows, unitsOnWay } from './model.js';

/** How often the desk (automatic mode above all) is read again, ms. */
const DESK_EVERY_MS = 30_000;
/** Units whose status clock is kept at most. */
const UNITS_KEPT = 2000;

export class TrafficConsole {
  constructor({ replica, city, me, now, t, invalidate }) {
    this.replica = replica;
    this.city = city;
    this.now = now;
    this.t = t;
    this.invalidate = invalidate;
    this.scope = scopeOf(me);
    this.mayAct = !!(me.may && me.may.traffic);
    this.desk = { announcements: [], limits: null, auto: new Map() };
    this.deskStamp = 0;
    this.sort = 'ds';
    /** The district filter ('' = every district in scope). */
    this.district = '';
    /** The board's highlighted junction key (null: the first row). */
    this.highlight = null;
    /** The junction opened in the detail, and its selected approach id. */
    this.selected = null;
    this.approach = null;
    /** Set when a key moved the highlight (`reveal`) or the approach (`revealApproach`): the panel scrolls it into view once. */
    this.reveal = false;
    this.revealApproach = false;
    /** `{text, sev}` under the board ('crit' an error, 'info' a note). */
    this.message = null;
    /** The form or overlay open (forms.js), or null. */
    this.overlay = null;
    /** Elements the keys reach, set by the panels: `board`, `approaches`, `filter`, `detail`. */
    this.el = {};
    this.cache = { stamp: null, rows: [], scoped: [] };
    this.commands = new Commands({
      replica,
      city,
      now,
      inScope: (id) => this.intersectionInScope(id),
      changed: () => invalidate('traffic'),
      ackTimeoutS: () => this.limit('ack_timeout_s', 10),
      selected: () => this.selected,
    });
    this.commands.issuedBy = (me && !me.anonymous && me.username) || null;
    replica.observe(this.commands);
    this.unitClock = replica.observe(new UnitStatusClock(UNITS_KEPT));
    this.unitCache = { stamp: null, rows: [] };
  }

  /** Reads the desk now and every DESK_EVERY_MS; resolves once the first answer (or failure) is in. */
  startDesk() {
    const load = async () => {
      if (!this.city) return;
      try {
        const d = await get(`/api/traffic/${encodeURIComponent(this.city)}/desk`);
        this.setDesk({ announcements: d.announcements || [], limits: d.limits || null, auto: autoMap(d.auto) });
      } catch (e) {
        if (!e.login) console.warn(`kendali: traffic desk: ${e.message}`);
      }
    };
    setInterval(load, DESK_EVERY_MS);
    return load();
  }

  /** A new desk answer: the board's rows are built again (automatic mode shows on them). */
  setDesk(desk) {
    this.desk = desk;
    this.deskStamp++;
    this.invalidate('traffic');
  }

  /** A limit from the desk, or `fallback` before the desk has answered. */
  limit(name, fallback) {
    const v = this.desk.limits && this.desk.limits[name];
    return Number.isFinite(v) ? v : fallback;
  }

  /** Whether the officer's scope holds the junction `id` of this console's city. */
  intersectionInScope(id) {
    if (this.scope.all) return true;
    const e = this.replica.get('intersection').get(`${this.city}/${id}`);
    return !!e && this.scope.has(e.value.info && e.value.info.district);
  }

  /**
   * The board's rows (scope and district filter applied, sorted) and the
   * rows in scope (for the district list); recomputed when the replica
   * changed, the second turned or the order or filter changed.
   */
  view() {
    const now = this.now();
    const s = this.replica.stats;
    const stamp = `${s.updates}/${s.snapshots}/${Math.floor(now / 1000)}/${this.sort}/${this.district}/${this.deskStamp}`;
    if (this.cache.stamp !== stamp) {
      const feeds = this.replica.get('feed');
      const scoped = [];
      for (const { value: v } of this.replica.get('intersection').values()) {
        if (this.city && v.city !== this.city) continue;
        const district = v.info && v.info.district;
        if (!this.scope.has(district)) continue;
        const feed = feeds.get(feedKey(v.city, v.id));
        scoped.push(junctionView(v, feed ? feed.value : null, this.desk.auto.get(v.id) || null, now));
      }
      const rows = sortRows(this.district ? scoped.filter((r) => r.district === this.district) : scoped.slice(), this.sort);
      this.cache = { stamp, rows, scoped };
    }
    return this.cache;
  }

  rows() {
    return this.view().rows;
  }

  /**
   * The emergency units on their way to a call (dispatched, en route), the
   * most urgent first (model.js unitsOnWay), each with the junctions holding
   * a green for it; recomputed when the replica changed or the second turned.
   */
  units() {
    const now = this.now();
    const s = this.replica.stats;
    const stamp = `${s.updates}/${s.snapshots}/${Math.floor(now / 1000)}/${this.commands.posted.size}`;
    if (this.unitCache.stamp !== stamp) {
      const list = [];
      for (const { value } of this.replica.get('unit').values()) list.push(value);
      // Every junction of the city holding a green for a unit counts, in the officer's districts or not.
      const cmds = [];
      for (const { value: c } of this.replica.get('command').values()) if (!this.city || c.city === this.city) cmds.push(c);
      for (const p of this.commands.posted.values()) cmds.push(p);
      const holds = corridorHolds(cmds);
      const rows = unitsOnWay(list, this.city, (u) => this.unitClock.of(u), holds, now);
      this.unitCache = { stamp, rows };
    }
    return this.unitCache.rows;
  }

  /**
   * Asks for a green corridor for `unit` (`minutes` each junction holds it
   * at most, `reason`): `{status, body}`. On a 202 the message line says
   * how many junctions hold it and which were skipped, and each junction's
   * command shows pending until its entity comes.
   */
  async corridor(unit, minutes, reason) {
    const t = this.t;
    if (!this.city) return { status: 0, body: { error: t('err_no_city') } };
    const res = await this.commands.corridor({ unit, reason, expires_in_s: Math.round(minutes * 60) });
    if (res.status === 202) {
      const b = res.body || {};
      const n = (b.commands || []).length;
      const skipped = b.skipped || [];
      const name = (id) => this.replica.get('intersection').get(`${this.city}/${id}`)?.value.info?.name || id;
      let msg = t(n === 1 ? 'corridor_sent_1' : 'corridor_sent', { unit: b.unit || unit, n });
      if (skipped.length) msg += ` ${t('corridor_skipped', { n: skipped.length, list: skipped.map((x) => `${name(x.intersection)}: ${x.why}`).join('; ') })}`;
      this.say(msg, n ? 'info' : 'warn');
      this.invalidate('traffic');
    } else if (!res.login) this.say(t('corridor_failed', { unit, error: errorText(t, res) }), 'crit');
    return res;
  }

  /** The districts to filter by: the officer's own, or those the junctions in scope name. */
  districts() {
    if (!this.scope.all) return this.scope.districts;
    const set = new Set();
    for (const r of this.view().scoped) if (r.district) set.add(r.district);
    return [...set].sort((a, b) => a.localeCompare(b));
  }

  /** The row shown highlighted: the highlighted key's, else the first. */
  highlightIndex(rows = this.rows()) {
    if (!rows.length) return -1;
    const at = this.highlight ? rows.findIndex((r) => r.key === this.highlight) : -1;
    return at < 0 ? 0 : at;
  }

  /** The board row of junction `key` now, built from the replica (null when unknown or out of scope). */
  rowOf(key) {
    const e = key ? this.replica.get('intersection').get(key) : null;
    if (!e || !this.scope.has(e.value.info && e.value.info.district)) return null;
    const v = e.value;
    const feed = this.replica.get('feed').get(feedKey(v.city, v.id));
    return junctionView(v, feed ? feed.value : null, this.desk.auto.get(v.id) || null, this.now());
  }

  /** The opened junction's row (null when none, or when it left the live state or the scope). */
  selectedRow() {
    return this.rowOf(this.selected);
  }

  /** The opened junction's approaches (from its info, else its state), in phase order. */
  approaches(row = this.selectedRow()) {
    if (!row) return [];
    const info = row.v.info;
    const st = row.v.state;
    const states = new Map(((st && st.approaches) || []).map((a) => [a.id, a]));
    const list = info && info.approaches && info.approaches.length ? info.approaches : ((st && st.approaches) || []).map((a) => ({ id: a.id, name: a.id }));
    return list.map((a) => ({ id: a.id, name: a.name || a.id, state: states.get(a.id) || null }));
  }

  /** Moves the board's highlight by `delta` rows ('first' / 'last' with `to`). */
  moveHighlight(delta, to) {
    const rows = this.rows();
    if (!rows.length) return;
    const at = this.highlightIndex(rows);
    const next = to === 'first' ? 0 : to === 'last' ? rows.length - 1 : Math.max(0, Math.min(rows.length - 1, at + delta));
    this.highlight = rows[next].key;
    this.reveal = true;
    this.invalidate('traffic');
  }

  /** Opens a junction in the detail; its first approach is selected. */
  select(key) {
    if (this.selected !== key) {
      this.selected = key;
      this.approach = null;
      const first = this.approaches()[0];
      this.approach = first ? first.id : null;
    }
    this.highlight = key;
    this.reveal = true;
    this.invalidate('traffic');
  }

  /** Moves the selected approach by `delta`. */
  moveApproach(delta) {
    const list = this.approaches();
    if (!list.length) return;
    const at = list.findIndex((a) => a.id === this.approach);
    const next = at < 0 ? 0 : Math.max(0, Math.min(list.length - 1, at + delta));
    this.approach = list[next].id;
    this.revealApproach = true;
    this.invalidate('traffic');
  }

  selectApproach(id) {
    this.approach = id;
    this.invalidate('traffic');
  }

  /** Cycles the board's order (`s`). */
  nextSort() {
    this.setSort(SORTS[(SORTS.indexOf(this.sort) + 1) % SORTS.length]);
  }

  setSort(sort) {
    this.sort = sort;
    this.reveal = true;
    this.invalidate('traffic');
  }

  setDistrict(d) {
    this.district = d;
    this.reveal = true;
    this.invalidate('traffic');
  }

  say(text, sev = 'info') {
    this.message = text ? { text, sev } : null;
    this.invalidate('traffic');
  }

  /** The opened junction as `{city, id, name}`, or null. */
  target() {
    const row = this.selectedRow();
    if (row) return { city: row.city, id: row.id, name: row.name, row };
    if (!this.selected) return null;
    const cut = this.selected.indexOf('/');
    const id = this.selected.slice(cut + 1);
    return { city: this.selected.slice(0, cut), id, name: id, row: null };
  }

  /**
   * POSTs a command (`action` plus `body`'s fields) for the opened junction:
   * `{status, body}`; 202 shows it pending until its entity comes.
   */
  async command(action, body = {}) {
    const t = this.t;
    const j = this.target();
    if (!j) {
      this.say(t('err_no_junction'), 'crit');
      return { status: 0, body: { error: t('err_no_junction') } };
    }
    const path = `/api/atcs/${encodeURIComponent(j.city)}/${encodeURIComponent(j.id)}/command`;
    const res = await this.commands.send(path, { ...body, action }, { city: j.city, intersection: j.id });
    const act = t(`act.${action}`);
    if (res.status === 202) this.say(t('sent', { act, name: j.name }), 'info');
    else if (!res.login) this.say(t('failed', { act, name: j.name, error: errorText(t, res) }), 'crit');
    return res;
  }

  /** Turns automatic mode on or off for the opened junction: `{status, body}`. */
  async setAuto(enabled, reason) {
    const t = this.t;
    const j = this.target();
    if (!j) return { status: 0, body: { error: t('err_no_junction') } };
    const path = `/api/atcs/${encodeURIComponent(j.city)}/${encodeURIComponent(j.id)}/auto`;
    try {
      const answer = await post(path, { enabled, reason });
      this.setDesk({ ...this.desk, auto: autoMap(answer && answer.auto) });
      this.say(t(enabled ? 'auto_set_on' : 'auto_set_off', { name: j.name }), 'info');
      return { status: 200, body: answer };
    } catch (e) {
      const res = { status: e.status || 0, body: e.body || { error: e.message }, error: e.message };
      if (!e.login) this.say(t('failed', { act: t('f_auto'), name: j.name, error: errorText(t, res) }), 'crit');
      return res;
    }
  }
}

/** The desk's `auto` list as intersection id -> entry. */
function autoMap(list) {
  return new Map((list || []).map((a) => [a.intersection, a]));
}

/** The server's message of a failed POST, plainly. */
export function errorText(t, res) {
  const msg = (res.body && res.body.error) || res.error || `HTTP ${res.status}`;
  return res.status === 0 ? t('err_no_answer', { error: msg }) : msg;
}
