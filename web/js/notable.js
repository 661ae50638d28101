// Notable events for the ticker, derived from the replica as updates arrive
// (it observes the replica):
// new priority-1 calls, intersections going over capacity (and back), signals
// flashing or off, feeds going stale (and back), call surges. Each note is
// words-free (an i18n key and values) so the ticker formats it in the wall's
// language; notes and every memory of what was noted are bounded.

import { BoundedMap } from './bounded.js';
import { INCIDENT_DS, SURGE, receivedAt } from './targets.js';

/** Notes kept for the ticker. */
const NOTES_KEPT = 60;
/** Keys remembered per rule (noted P1 calls, cooldowns). */
const REMEMBERED = 1000;
/** One note per feed per this long, whichever way it flips. */
const FEED_COOLDOWN_MS = 5 * 60_000;
/** One surge note per line per this long. */
const SURGE_COOLDOWN_MS = 10 * 60_000;
/** Saturation below which an incident is over (hysteresis against flapping). */
const INCIDENT_CLEAR_DS = 0.95;

export class Notable {
  /** `now()`: the server's clock, ms; `invalidate(kind)`: asks for a render. */
  constructor({ now, invalidate }) {
    this.now = now;
    this.invalidate = invalidate;
    this.notes = { items: [], seq: 0 };
    this.p1 = new BoundedMap(REMEMBERED);
    this.incidents = new BoundedMap(REMEMBERED);
    this.feedNoted = new BoundedMap(REMEMBERED);
    this.surgeNoted = new Map();
    // Per line: calls received per WIB minute (by source time), 75 minutes back.
    this.perMinute = new Map();
    this.inSnapshot = false;
  }

  push(note) {
    const items = this.notes.items;
    note.id = ++this.notes.seq;
    items.push(note);
    items.sort((a, b) => a.at - b.at);
    if (items.length > NOTES_KEPT) items.splice(0, items.length - NOTES_KEPT);
    this.invalidate('notes');
  }

  beginSnapshot() {
    this.inSnapshot = true;
  }

  endSnapshot() {
    this.inSnapshot = false;
  }

  /** An entity changed from `old` to `now` (either may be null). */
  update(kind, key, old, now, fromSnapshot) {
    if (kind === 'call') this.call(key, now);
    else if (kind === 'intersection') this.intersection(key, old, now);
    else if (kind === 'feed') this.feed(key, old, now, fromSnapshot);
  }

  call(key, c) {
    if (!c || !c.open || c.priority !== 1 || this.p1.has(key)) return;
    this.p1.set(key, true);
    const at = receivedAt(c);
    const where = c.caller && c.caller.address ? c.caller.address : '';
    this.push({ at, sev: 'crit', key: 'ev_p1', vars: { line: c.line, cat: c.category || 'unknown', where }, ref: key });
  }

  intersection(key, old, now) {
    if (!now) return;
    const ds = now.worst_saturation;
    const name = (now.info && now.info.name) || now.id;
    const at = Date.parse(now.rx) || this.now();
    if (Number.isFinite(ds)) {
      if (ds > INCIDENT_DS && !this.incidents.get(key)) {
        this.incidents.set(key, true);
        this.push({ at, sev: 'crit', key: 'ev_incident', vars: { name, ds }, ref: key });
      } else if (ds < INCIDENT_CLEAR_DS && this.incidents.get(key)) {
        this.incidents.set(key, false);
        this.push({ at, sev: 'ok', key: 'ev_incident_clear', vars: { name, ds }, ref: key });
      }
    }
    const mode = now.state && now.state.mode;
    const oldMode = old && old.state && old.state.mode;
    if ((mode === 'flashing' || mode === 'off') && mode !== oldMode) {
      this.push({ at, sev: 'warn', key: 'ev_mode', vars: { name, mode }, ref: key });
    }
  }

  feed(key, old, now, fromSnapshot) {
    if (!now || fromSnapshot) return;
    const was = old ? old.stale : false;
    if (now.stale === was) return;
    const t = this.now();
    const last = this.feedNoted.get(key);
    if (last && t - last < FEED_COOLDOWN_MS) return;
    this.feedNoted.set(key, t);
    const what = { family: now.family, source: now.source };
    if (now.stale) this.push({ at: t, sev: 'warn', key: 'ev_stale', vars: what, ref: key });
    else this.push({ at: t, sev: 'ok', key: 'ev_fresh', vars: what, ref: key });
  }

  /** An event: a call event counts as `received` per line and minute, and may make a surge. */
  event(kind, e, fromSnapshot) {
    if (kind !== 'call_event' || !e || e.type !== 'received') return;
    const ts = Date.parse(e.ts);
    if (!Number.isFinite(ts)) return;
    const minute = Math.floor(ts / 60_000);
    let m = this.perMinute.get(e.line);
    if (!m) this.perMinute.set(e.line, (m = new Map()));
    m.set(minute, (m.get(minute) || 0) + 1);
    for (const k of m.keys()) if (k < minute - 75) m.delete(k);
    if (fromSnapshot) return;
    const recent = sum(m, minute - SURGE.windowMin + 1, minute);
    const before = sum(m, minute - 65, minute - SURGE.windowMin) / (60 / SURGE.windowMin);
    if (recent >= SURGE.minCalls && recent >= SURGE.factor * Math.max(before, 1)) {
      const last = this.surgeNoted.get(e.line) || 0;
      if (ts - last >= SURGE_COOLDOWN_MS) {
        this.surgeNoted.set(e.line, ts);
        this.push({ at: ts, sev: 'warn', key: 'ev_surge', vars: { line: e.line, n: recent }, ref: 'surge/' + e.line });
      }
    }
  }
}

function sum(m, from, to) {
  let n = 0;
  for (const [k, v] of m) if (k >= from && k <= to) n += v;
  return n;
}
