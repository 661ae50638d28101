// The replica: this screen's copy of the protocol state (PROTOCOL.md), kept
// from `snapshot` and `delta` frames. It holds the entities by kind and key
// with the seq of their last update, tombstones of removed ones, recent events
// per kind, the last seq and the server run (`epoch`) to resume from, and the
// freshness of the feeds. It renders nothing: it reports what changed through
// `onChange(kind, key)`, and derived views (KPI series, the alerts) plug in
// as observers. Frames are applied as they arrive (no queue, so no backlog
// can grow); every collection is bounded.

import { Fifo } from './bounded.js';

/** Recent events kept per event kind (a busy city's last minutes of calls). */
const EVENTS_KEPT = 400;
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

export const ENTITY_KINDS = ['intersection', 'call', 'unit', 'kpi', 'counters', 'feed', 'command', 'alert'];
export const EVENT_KINDS = ['call_event', 'app_event'];

/**
 * Observers (`observe(o)`) may define any of: `beginSnapshot()`,
 * `endSnapshot()`, `update(kind, key, oldValue, newValue, fromSnapshot)` for
 * entities (a null value: absent or removed) and `event(kind, value, fromSnapshot)`.
 */
export class Replica {
  /** `city`: the city shown (null: whatever arrives); `now()`: the server's clock, ms. */
  constructor({ city = null, now = Date.now } = {}) {
    this.city = city;
    this.now = now;
    this.entities = new Map(ENTITY_KINDS.map((k) => [k, new Map()]));
    this.events = new Map(EVENT_KINDS.map((k) => [k, new Fifo(EVENTS_KEPT)]));
    this.tombs = new Map();
    this.maxEventSeq = 0;
    this.lastSeq = 0;
    /** The server run our sequence numbers belong to (sent back with `since`). */
    this.epoch = null;
    this.seqLog = new Fifo(SEQ_LOG_KEPT);
    this.lastFrameAt = 0;
    /** Per kind, the newest `rx` (server receive time, ms) seen. */
    this.newestRx = new Map();
    this.observers = [];
    /** Called with (kind, key?) whenever something of that kind changed. */
    this.onChange = null;
    this.stats = { frames: 0, snapshots: 0, resets: 0, resumes: 0, heartbeats: 0, updates: 0, events: 0, bytes: 0, ignored: 0, errors: 0, applyMs: 0, applyMsMax: 0 };
  }

  /** The server's clock now, ms (the screen's own clock may be off). */
  serverNow() {
    return this.now();
  }

  /** Entities of `kind`: key -> `{seq, rx, value}`. */
  get(kind) {
    return this.entities.get(kind);
  }

  /** Recent events of `kind` (oldest first). */
  recent(kind) {
    return this.events.get(kind)?.items || [];
  }

  observe(observer) {
    this.observers.push(observer);
    return observer;
  }

  changed(kind, key) {
    if (this.onChange) this.onChange(kind, key);
  }

  notify(method, ...args) {
    for (const o of this.observers) if (o[method]) o[method](...args);
  }

  /** Applies one frame (already parsed); `bytes` is its size for the stats. */
  apply(frame, bytes = 0) {
    const t0 = performance.now();
    this.stats.frames++;
    this.stats.bytes += bytes;
    this.lastFrameAt = Date.now();
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
    const ms = performance.now() - t0;
    this.stats.applyMs = this.stats.applyMs * 0.95 + ms * 0.05;
    this.stats.applyMsMax = Math.max(this.stats.applyMsMax, ms);
  }

  applySnapshot(frame) {
    if (frame.reset) this.stats.resets++;
    // Another server run (new epoch, or a lower seq than ours): numbers start again from 1.
    const restarted = (frame.epoch != null && this.epoch != null && frame.epoch !== this.epoch) || frame.seq < this.lastSeq;
    for (const [kind, m] of this.entities) {
      if (m.size) this.changed(kind);
      m.clear();
    }
    this.tombs.clear();
    if (restarted) {
      this.maxEventSeq = 0;
      for (const list of this.events.values()) list.clear();
      this.seqLog.clear();
    }
    this.notify('beginSnapshot');
    for (const u of frame.updates || []) this.applyUpdate(u, true);
    for (const u of frame.events || []) this.applyUpdate(u, true);
    this.notify('endSnapshot');
  }

  applyUpdate(u, fromSnapshot) {
    const rx = Date.parse(u.rx);
    const events = this.events.get(u.kind);
    if (events) {
      if (u.seq <= this.maxEventSeq) {
        this.stats.ignored++;
        return;
      }
      this.maxEventSeq = u.seq;
      this.stats.events++;
      events.push(u.value);
      this.notify('event', u.kind, u.value, fromSnapshot);
      this.noteRx(u.kind, rx);
      this.changed(u.kind);
      return;
    }
    const m = this.entities.get(u.kind);
    if (!m) return;
    const old = m.get(u.key);
    const tombKey = u.key + '\u0000' + u.kind;
    const tomb = this.tombs.get(tombKey);
    if ((old && old.seq >= u.seq) || (tomb && tomb >= u.seq)) {
      this.stats.ignored++;
      return;
    }
    this.stats.updates++;
    if (u.value == null) {
      m.delete(u.key);
      this.tombs.set(tombKey, u.seq);
      if (this.tombs.size > TOMBSTONES_KEPT) this.tombs.delete(this.tombs.keys().next().value);
    } else {
      m.set(u.key, { seq: u.seq, rx, value: u.value });
    }
    this.noteRx(u.kind, rx);
    this.changed(u.kind, u.key);
    this.notify('update', u.kind, u.key, old ? old.value : null, u.value, fromSnapshot);
  }

  noteRx(kind, rx) {
    if (Number.isFinite(rx) && !(this.newestRx.get(kind) >= rx)) this.newestRx.set(kind, rx);
  }

  /** The sequence number to resume from (see RESUME_BEHIND_MS), or null before any frame. */
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

  /** Entity and event counts by kind, and tombstones, for the stats. */
  sizes() {
    const out = {};
    for (const [k, m] of this.entities) out[k] = m.size;
    for (const [k, list] of this.events) out[`${k}s`] = list.items.length;
    out.tombstones = this.tombs.size;
    return out;
  }
}

/** Combines the freshness of several families (a panel fed by more than one). */
export function mergeFeeds(...list) {
  const out = { total: 0, stale: 0, newest: NaN, staleSince: NaN, staleSources: new Map() };
  for (const f of list) {
    out.total += f.total;
    out.stale += f.stale;
    if (Number.isFinite(f.newest) && !(out.newest >= f.newest)) out.newest = f.newest;
    if (Number.isFinite(f.staleSince) && !(out.staleSince >= f.staleSince)) out.staleSince = f.staleSince;
  }
  out.allStale = out.total > 0 && out.stale === out.total;
  return out;
}
