// The model: the wall's copy of the live city. Frames from the socket are
// applied here at once (no queue, so no backlog can grow); panels read the
// model when the scheduler renders, at most once per animation frame. Every
// collection is bounded: entities by the server's own bounds, and everything
// the wall accumulates (events, KPI history, ticker notes, resume log) by the
// capacities below.

import { Notable } from './notable.js';

/** Recent call events kept (surge detection looks back 75 minutes at most). */
const EVENTS_KEPT = 400;
/** KPI samples kept per metric: 4 h at the simulator's 10 s pace. */
export const KPI_POINTS = 1440;
/** KPI metrics with a history (oldest dropped beyond). */
const KPI_METRICS_KEPT = 128;
/** Removed entity keys remembered, so a late replay cannot bring one back. */
const TOMBSTONES_KEPT = 4000;
/** Frame sequence numbers remembered for a safe resume point. */
const SEQ_LOG_KEPT = 128;
/**
 * How far back the resume point sits behind the newest frame. With
 * `max_rate`, the hub holds an entity's update back for up to 1/max_rate s
 * while later frames (with higher seq) go out; resuming from the newest frame
 * could skip such a held update for good. One and a half seconds covers
 * max_rate >= 1 plus the hub tick; replays are harmless (entities keep the
 * newest seq, events are deduplicated by seq).
 */
const RESUME_BEHIND_MS = 1500;
/** Server clock readings kept (heartbeats come about once a second: the last half minute). */
const CLOCK_SAMPLES = 30;
/** KPI history saved in localStorage (a reload keeps the sparklines): one point per minute, 4 h. */
const SAVED_POINT_MS = 60_000;
const SAVED_SPAN_MS = 4 * 3600_000;

/** A fixed-capacity ring of (time, value) pairs. */
export class Ring {
  constructor(capacity) {
    this.cap = capacity;
    this.t = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
    this.start = 0;
    this.length = 0;
  }
  push(t, v) {
    const i = (this.start + this.length) % this.cap;
    this.t[i] = t;
    this.v[i] = v;
    if (this.length < this.cap) this.length++;
    else this.start = (this.start + 1) % this.cap;
  }
  /** The i-th oldest point. */
  at(i) {
    const j = (this.start + i) % this.cap;
    return [this.t[j], this.v[j]];
  }
  last() {
    return this.length ? this.at(this.length - 1) : null;
  }
}

/** A bounded FIFO list. */
export class Fifo {
  constructor(capacity) {
    this.cap = capacity;
    this.items = [];
  }
  push(x) {
    this.items.push(x);
    if (this.items.length > this.cap) this.items.splice(0, this.items.length - this.cap);
  }
  clear() {
    this.items.length = 0;
  }
}

const ENTITY_KINDS = ['intersection', 'call', 'unit', 'kpi', 'counters', 'feed', 'command'];

export class Model {
  /** `city`: the city shown (null: whatever arrives); `scenario`: geometry and titles, or null. */
  constructor({ city, scenario }) {
    this.city = city;
    this.scenario = scenario;
    this.entities = new Map(ENTITY_KINDS.map((k) => [k, new Map()]));
    this.tombs = new Map();
    this.callEvents = new Fifo(EVENTS_KEPT);
    this.maxEventSeq = 0;
    this.lastSeq = 0;
    /** The server run our sequence numbers belong to (sent back with `since`). */
    this.epoch = null;
    this.seqLog = new Fifo(SEQ_LOG_KEPT);
    this.offsetMs = 0;
    this.clockSamples = [];
    this.lastFrameAt = 0;
    this.newestRx = new Map();
    this.kpi = new Map();
    this.dirty = new Set(ENTITY_KINDS);
    this.dirtyKeys = new Map();
    this.conn = { state: 'connecting', attempt: 0, since: Date.now() };
    this.notable = new Notable(this);
    this.loadKpi();
    this.stats = { frames: 0, snapshots: 0, resets: 0, resumes: 0, heartbeats: 0, updates: 0, events: 0, bytes: 0, ignored: 0, errors: 0, applyMs: 0, applyMsMax: 0 };
  }

  /** The server's clock now, ms (the wall PC's clock may be off). */
  serverNow() {
    return Date.now() + this.offsetMs;
  }

  get(kind) {
    return this.entities.get(kind);
  }

  /**
   * One reading of the server clock. A frame arrives some time after its
   * `server_time` was written (a big snapshot takes a while), so the reading
   * with the largest server-minus-local difference is the least delayed: the
   * offset is the largest of the last few readings.
   */
  clockSample(serverMs) {
    if (!Number.isFinite(serverMs)) return;
    const s = this.clockSamples;
    s.push(serverMs - Date.now());
    if (s.length > CLOCK_SAMPLES) s.shift();
    this.offsetMs = Math.max(...s);
  }

  markDirty(kind, key) {
    this.dirty.add(kind);
    if (this.onDirty) this.onDirty();
    if (key != null) {
      let s = this.dirtyKeys.get(kind);
      if (!s) this.dirtyKeys.set(kind, (s = new Set()));
      s.add(key);
    }
  }

  /** Applies one frame (already parsed); `bytes` is its size for the stats. */
  apply(frame, bytes = 0) {
    const t0 = performance.now();
    this.stats.frames++;
    this.stats.bytes += bytes;
    this.lastFrameAt = Date.now();
    if (frame.server_time) this.clockSample(Date.parse(frame.server_time));
    switch (frame.type) {
      case 'snapshot':
        this.stats.snapshots++;
        this.applySnapshot(frame);
        break;
      case 'delta':
        for (const u of frame.updates || []) this.applyUpdate(u, false);
        break;
      case 'resumed':
        this.stats.resumes++;
        break;
      case 'heartbeat':
        this.stats.heartbeats++;
        break;
      case 'error':
        this.stats.errors++;
        console.warn('kendali server error frame:', frame.message);
        break;
      default:
        break;
    }
    if (frame.epoch != null && (frame.type === 'snapshot' || frame.type === 'resumed')) this.epoch = frame.epoch;
    // What we hold runs up to the seq of a snapshot, delta or heartbeat; a `resumed`
    // frame's seq is where the catch-up will end, not what has arrived (PROTOCOL.md).
    if (Number.isFinite(frame.seq) && (frame.type === 'snapshot' || frame.type === 'delta' || frame.type === 'heartbeat')) {
      if (frame.seq >= this.lastSeq || frame.type === 'snapshot') this.lastSeq = frame.seq;
      this.seqLog.push([this.lastFrameAt, this.lastSeq]);
    }
    this.dirty.add('conn');
    const ms = performance.now() - t0;
    this.stats.applyMs = this.stats.applyMs * 0.95 + ms * 0.05;
    this.stats.applyMsMax = Math.max(this.stats.applyMsMax, ms);
  }

  applySnapshot(frame) {
    if (frame.reset) this.stats.resets++;
    // Another server run (new epoch, or a lower seq than ours): numbers start again from 1.
    const restarted = (frame.epoch != null && this.epoch != null && frame.epoch !== this.epoch) || frame.seq < this.lastSeq;
    for (const [kind, m] of this.entities) {
      if (m.size) this.dirty.add(kind);
      m.clear();
    }
    this.tombs.clear();
    if (restarted) {
      this.maxEventSeq = 0;
      this.callEvents.clear();
      this.seqLog.clear();
    }
    this.notable.beginSnapshot();
    for (const u of frame.updates || []) this.applyUpdate(u, true);
    for (const u of frame.events || []) this.applyUpdate(u, true);
    this.notable.endSnapshot();
  }

  applyUpdate(u, fromSnapshot) {
    const rx = Date.parse(u.rx);
    if (u.kind === 'call_event' || u.kind === 'app_event') {
      if (u.seq <= this.maxEventSeq) {
        this.stats.ignored++;
        return;
      }
      this.maxEventSeq = u.seq;
      this.stats.events++;
      if (u.kind === 'call_event') {
        this.callEvents.push(u.value);
        this.notable.callEvent(u.value, fromSnapshot);
      }
      this.noteRx(u.kind, rx);
      this.markDirty(u.kind);
      return;
    }
    const m = this.entities.get(u.kind);
    if (!m) return;
    const old = m.get(u.key);
    const tomb = this.tombs.get(u.key + '\u0000' + u.kind);
    if ((old && old.seq >= u.seq) || (tomb && tomb >= u.seq)) {
      this.stats.ignored++;
      return;
    }
    this.stats.updates++;
    if (u.value == null) {
      m.delete(u.key);
      this.tombs.set(u.key + '\u0000' + u.kind, u.seq);
      if (this.tombs.size > TOMBSTONES_KEPT) this.tombs.delete(this.tombs.keys().next().value);
    } else {
      m.set(u.key, { seq: u.seq, rx, value: u.value });
      if (u.kind === 'kpi') this.recordKpi(u.key, u.value);
    }
    this.noteRx(u.kind, rx);
    this.markDirty(u.kind, u.key);
    this.notable.update(u.kind, u.key, old ? old.value : null, u.value, fromSnapshot);
  }

  noteRx(kind, rx) {
    if (Number.isFinite(rx) && !(this.newestRx.get(kind) >= rx)) this.newestRx.set(kind, rx);
  }

  recordKpi(key, v) {
    const ts = Date.parse(v.ts);
    if (!Number.isFinite(ts) || !Number.isFinite(v.value)) return;
    let ring = this.kpi.get(key);
    if (!ring) {
      if (this.kpi.size >= KPI_METRICS_KEPT) this.kpi.delete(this.kpi.keys().next().value);
      ring = new Ring(KPI_POINTS);
      this.kpi.set(key, ring);
    }
    const last = ring.last();
    if (last && ts <= last[0]) return; // a replay or a late sample
    ring.push(ts, v.value);
  }

  /**
   * Merges server history (`[[ms, value]]`, e.g. from `/api/history/kpi`)
   * under the samples gathered live: only points older than the oldest one held.
   */
  prefillKpi(key, points) {
    const held = this.kpi.get(key);
    const oldest = held && held.length ? held.at(0)[0] : Infinity;
    const ring = new Ring(KPI_POINTS);
    const older = points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v) && t < oldest).sort((a, b) => a[0] - b[0]);
    for (const [t, v] of older.slice(-KPI_POINTS)) ring.push(t, v);
    if (held) for (let i = 0; i < held.length; i++) ring.push(...held.at(i));
    if (!ring.length) return;
    if (!held && this.kpi.size >= KPI_METRICS_KEPT) this.kpi.delete(this.kpi.keys().next().value);
    this.kpi.set(key, ring);
    this.markDirty('kpi', key);
  }

  /** Saves the KPI history (one point per minute) for the next page load; best effort. */
  saveKpi() {
    try {
      const cutoff = Date.now() - SAVED_SPAN_MS;
      const series = {};
      for (const [key, ring] of this.kpi) {
        const pts = [];
        let lastMinute = -1;
        for (let i = 0; i < ring.length; i++) {
          const [t, v] = ring.at(i);
          if (t < cutoff) continue;
          const minute = Math.floor(t / SAVED_POINT_MS);
          if (minute === lastMinute) pts[pts.length - 1] = [t, v];
          else pts.push([t, v]);
          lastMinute = minute;
        }
        if (pts.length) series[key] = pts;
      }
      localStorage.setItem(this.storageKey(), JSON.stringify({ v: 1, series }));
    } catch (e) {
      /* storage full or disabled: the sparklines simply start afresh next time */
    }
  }

  /** Restores the KPI history saved by a previous page load of this city. */
  loadKpi() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey()) || 'null');
      if (!saved || saved.v !== 1) return;
      const cutoff = Date.now() - SAVED_SPAN_MS;
      for (const [key, pts] of Object.entries(saved.series || {}).slice(0, KPI_METRICS_KEPT)) {
        const ring = new Ring(KPI_POINTS);
        for (const [t, v] of pts) if (t >= cutoff && Number.isFinite(v)) ring.push(t, v);
        if (ring.length) this.kpi.set(key, ring);
      }
    } catch (e) {
      /* unreadable: start afresh */
    }
  }

  storageKey() {
    return `kendali.kpi.${this.city || 'all'}`;
  }

  /** The sequence number to resume from (see RESUME_BEHIND_MS). */
  resumeSeq() {
    const log = this.seqLog.items;
    if (!log.length) return this.lastSeq || null;
    const newest = log[log.length - 1][0];
    for (let i = log.length - 1; i >= 0; i--) if (log[i][0] <= newest - RESUME_BEHIND_MS) return log[i][1];
    return log[0][1];
  }

  /**
   * Freshness of the feeds of `family` (optionally one `source`): how many,
   * how many stale, the newest message time and, when all are stale, since
   * when. A feed is stale when the server says so, or when its last message
   * is older than its threshold by our own clock (the server may be out of reach).
   */
  feeds(family, source) {
    const now = this.serverNow();
    const out = { total: 0, stale: 0, newest: NaN, staleSince: NaN, staleSources: new Map() };
    for (const { value: f } of this.get('feed').values()) {
      if (f.family !== family || (source != null && f.source !== source)) continue;
      if (this.city && f.city !== this.city) continue;
      out.total++;
      const last = Date.parse(f.last_rx);
      if (!(out.newest >= last)) out.newest = last;
      const stale = f.stale || (now - last) / 1000 > f.stale_after_s + 3;
      if (stale) {
        out.stale++;
        out.staleSources.set(f.source, last);
        if (!(out.staleSince >= last)) out.staleSince = last;
      }
    }
    out.allStale = out.total > 0 && out.stale === out.total;
    return out;
  }

  setConnection(state, attempt = 0) {
    if (this.conn.state !== state) this.conn = { state, attempt, since: Date.now() };
    else this.conn.attempt = attempt;
    this.dirty.add('conn');
  }

  /** Entity counts by kind, for the stats. */
  sizes() {
    const out = {};
    for (const [k, m] of this.entities) out[k] = m.size;
    out.call_events = this.callEvents.items.length;
    out.kpi_series = this.kpi.size;
    out.kpi_points = [...this.kpi.values()].reduce((a, r) => a + r.length, 0);
    out.notes = this.notable.notes.items.length;
    out.tombstones = this.tombs.size;
    return out;
  }
}
