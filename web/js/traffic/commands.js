// Commands in flight, and every command the console knows. The bus is the
// truth: a POST's 202 answer only says the command was published, so it is
// shown pending (from the answer's `command`) until its `command` entity
// arrives on the socket; from then on only the entity speaks (applied,
// rejected, timed out, its lease). Nothing here ever shows "applied" from a
// POST. A refused POST (4xx) keeps nothing and gives the server's message.
// The live state keeps only the last commands of the whole city, so the
// opened junction's history also reads the store
// (`GET /api/history/commands/{city}/{intersection}`, the last 24 hours):
// `history(city, id)` is the union, the live entity winning.

import { get, post } from '../api.js';
import { commandView } from './model.js';

/** Published commands waiting for their entity, kept at most (the oldest goes first). */
const POSTED_KEPT = 64;
/** A published command whose entity never came is dropped after this long, ms (the entity's `due` has long passed). */
const POSTED_FORGET_MS = 15 * 60_000;
/** How often the opened junction's stored history is read again, ms. */
const STORED_EVERY_MS = 60_000;
/** The ack timeout before the desk has answered, s (the server's default). */
const ACK_TIMEOUT_S = 10;

/** ms of an ISO time (NaN when absent or unreadable). */
function isoMs(v) {
  return v ? Date.parse(v) : NaN;
}

/**
 * The opened junction's commands as the store has them: read when a
 * junction opens (`want`) and again every STORED_EVERY_MS while it stays
 * open; an answer for a junction no longer open (or overtaken by a newer
 * read) is dropped. `failed`: the last read failed and nothing stored is
 * held for this junction.
 */
export class StoredHistory {
  /** `selected()`: the opened junction's key (`city/id`) now; `changed()`. */
  constructor({ selected, changed }) {
    this.selected = selected;
    this.changed = changed;
    /** `city/id` of the junction the points are for (null: none open). */
    this.key = null;
    /** Stored commands as entities (`status` null: no answer stored). */
    this.points = [];
    this.loaded = false;
    this.failed = false;
    /** When the last read started (performance.now(), ms). */
    this.at = -Infinity;
    this.seq = 0;
  }

  /** The junction open now (null: none): reads its stored history when it is new, or every STORED_EVERY_MS. */
  want(city, id) {
    const key = city == null || id == null ? null : `${city}/${id}`;
    if (key !== this.key) {
      this.key = key;
      this.points = [];
      this.loaded = false;
      this.failed = false;
      this.at = -Infinity;
      this.seq++;
    }
    if (!key) return;
    const t = performance.now();
    if (t - this.at < STORED_EVERY_MS) return;
    this.at = t;
    this.load(city, id, key);
  }

  async load(city, id, key) {
    const seq = ++this.seq;
    const current = () => seq === this.seq && key === this.key && (!this.selected || this.selected() === key);
    try {
      const answer = await get(`/api/history/commands/${encodeURIComponent(city)}/${encodeURIComponent(id)}`);
      if (!current()) return;
      const points = (answer && Array.isArray(answer.points) && answer.points) || [];
      this.points = points.map((p) => storedEntity(city, id, p)).filter(Boolean);
      this.loaded = true;
      this.failed = false;
    } catch (e) {
      if (!current()) return;
      // What an earlier read gave stays; only a junction with nothing stored says so.
      this.failed = !this.loaded;
      if (!e.login) console.warn(`kendali: command history ${key}: ${e.message}`);
    }
    this.changed();
  }
}

/** A stored point (`{command, rx, status, reason, ack_ts}`) as a command entity, or null when it has no command. */
function storedEntity(city, intersection, p) {
  const cmd = p && p.command;
  if (!cmd || !cmd.command_id) return null;
  return {
    city,
    intersection,
    command_id: cmd.command_id,
    command: cmd,
    status: p.status === 'applied' || p.status === 'rejected' ? p.status : null,
    reason: p.reason ?? null,
    late: false,
    ack_ts: p.ack_ts ?? null,
    due: null,
    before: null,
    lease: null,
    rx: p.rx || cmd.ts || null,
    stored: true,
  };
}

export class Commands {
  /**
   * `replica`; `city`; `inScope(intersectionId)`; `now()` the server's
   * clock; `changed()`; `ackTimeoutS()` the desk's ack timeout, s;
   * `selected()` the opened junction's key.
   */
  constructor({ replica, city, inScope, now, changed, ackTimeoutS, selected }) {
    this.replica = replica;
    this.city = city;
    this.inScope = inScope;
    this.now = now;
    this.changed = changed;
    this.ackTimeoutS = ackTimeoutS || (() => ACK_TIMEOUT_S);
    /** command_id -> a pending entity made from the 202 answer. */
    this.posted = new Map();
    /** The opened junction's stored commands. */
    this.stored = new StoredHistory({ selected, changed });
  }

  /** Replica observer hook: a command's entity replaces what the 202 said. */
  update(kind, key, old, value) {
    if (kind === 'command' && value && this.posted.delete(value.command_id)) this.changed();
  }

  /**
   * POSTs `body` to `path`; resolves to `{status, body}` (status 0: no
   * answer). A 202 from the command endpoint is remembered as pending.
   */
  async send(path, body, { city, intersection } = {}) {
    try {
      const answer = await post(path, body);
      const cmd = answer && answer.command;
      if (cmd && cmd.command_id) this.remember(city, intersection, cmd);
      return { status: cmd ? 202 : 200, body: answer };
    } catch (e) {
      return { status: e.status || 0, body: e.body || { error: e.message, status: e.status || 0 }, error: e.message, login: !!e.login };
    }
  }

  /**
   * Shows the published command `cmd` (at least `command_id` and `action`)
   * for junction `city/intersection` as pending until its entity comes
   * (nothing when it has come already).
   */
  remember(city, intersection, cmd) {
    if (!cmd || !cmd.command_id || this.replica.get('command').has(cmd.command_id)) return;
    this.posted.set(cmd.command_id, { city, intersection, command_id: cmd.command_id, command: cmd, status: 'pending', reason: null, lease: null, rx: null, postedAt: this.now() });
    if (this.posted.size > POSTED_KEPT) this.posted.delete(this.posted.keys().next().value);
    this.changed();
  }

  /**
   * POSTs a green corridor for a unit (`body`: `{unit, reason,
   * expires_in_s}`) to `/api/traffic/{city}/corridor`; resolves to `{status,
   * body}` (202: each junction's `priority` command is pending until its
   * entity comes; status 0: no answer).
   */
  async corridor(body) {
    const path = `/api/traffic/${encodeURIComponent(this.city)}/corridor`;
    try {
      const answer = await post(path, body);
      const issuedBy = this.issuedBy || undefined;
      for (const c of (answer && answer.commands) || []) {
        this.remember(this.city, c.intersection, {
          command_id: c.command_id,
          ts: new Date(this.now()).toISOString(),
          action: 'priority',
          approach: c.approach,
          unit: answer.unit || body.unit,
          expires_in_s: answer.expires_in_s ?? body.expires_in_s,
          reason: answer.call_id ? `koridor hijau ${answer.unit || body.unit} (${answer.call_id}): ${body.reason}` : body.reason,
          issued_by: issuedBy,
        });
      }
      return { status: 202, body: answer || {} };
    } catch (e) {
      return { status: e.status || 0, body: e.body || { error: e.message, status: e.status || 0 }, error: e.message, login: !!e.login };
    }
  }

  /**
   * Every command known for this console (the city's, in scope), as
   * entities: the replica's, then the posted ones not yet arrived.
   */
  entities() {
    const out = [];
    const seen = this.replica.get('command');
    for (const { value: c } of seen.values()) {
      if (this.city && c.city !== this.city) continue;
      if (!this.inScope(c.intersection)) continue;
      out.push(c);
    }
    const old = this.now() - POSTED_FORGET_MS;
    for (const [id, p] of this.posted) {
      if (seen.has(id)) this.posted.delete(id);
      else if (p.postedAt < old) this.posted.delete(id);
      else out.push(p);
    }
    return out;
  }

  /** The commands of one junction, newest first. */
  forJunction(city, id) {
    const now = this.now();
    return this.entities()
      .filter((c) => c.city === city && c.intersection === id)
      .map((c) => ({ c, view: commandView(c, now) }))
      .sort((a, b) => (b.view.at || 0) - (a.view.at || 0));
  }

  /**
   * The opened junction's history, newest first: its commands the console
   * knows (forJunction) and, by command_id, those only the store has; a
   * stored one without an answer shows pending until the ack timeout has
   * passed since it came, then timed out.
   */
  history(city, id) {
    const now = this.now();
    const out = this.forJunction(city, id);
    const st = this.stored;
    if (st.key !== `${city}/${id}` || !st.points.length) return out;
    const seen = new Set(out.map((x) => x.c.command_id));
    const timeoutMs = Math.max(0, Number(this.ackTimeoutS()) || ACK_TIMEOUT_S) * 1000;
    for (const p of st.points) {
      if (seen.has(p.command_id)) continue;
      seen.add(p.command_id);
      const rx = isoMs(p.rx);
      let c = p;
      if (p.status == null) c = { ...p, status: Number.isFinite(rx) && now - rx <= timeoutMs ? 'pending' : 'timed_out' };
      out.push({ c, view: commandView(c, now) });
    }
    return out.sort((a, b) => (b.view.at || 0) - (a.view.at || 0));
  }

  /** The commands in force (lease) and the pending ones, the soonest to end first, then the newest pending. */
  live() {
    const now = this.now();
    return this.entities()
      .map((c) => ({ c, view: commandView(c, now) }))
      .filter(({ view }) => view.lease_state === 'in_force' || view.status === 'pending')
      .sort((a, b) => (a.view.remaining_s ?? Infinity) - (b.view.remaining_s ?? Infinity) || (b.view.at || 0) - (a.view.at || 0));
  }

  /** For tests: `{command_id, status, lease_state, remaining_s}` of every known command. */
  summary() {
    const now = this.now();
    return this.entities().map((c) => {
      const v = commandView(c, now);
      return { command_id: v.command_id, status: v.status, lease_state: v.lease_state, remaining_s: v.remaining_s };
    });
  }
}
