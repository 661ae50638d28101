// Commands in flight, and every command the console knows. The bus is the
// truth: a POST's 202 answer only says the command was published, so it is
// shown pending (from the answer's `command`) until its `command` entity
// arrives on the socket; from then on only the entity speaks (applied,
// rejected, timed out, its lease). Nothing here ever shows "applied" from a
// POST. A refused POST (4xx) keeps nothing and gives the server's message.

import { post } from '../api.js';
import { commandView } from './model.js';

/** Published commands waiting for their entity, kept at most (the oldest goes first). */
const POSTED_KEPT = 64;
/** A published command whose entity never came is dropped after this long, ms (the entity's `due` has long passed). */
const POSTED_FORGET_MS = 15 * 60_000;

export class Commands {
  /** `replica`; `city`; `inScope(intersectionId)`; `now()` the server's clock; `changed()`. */
  constructor({ replica, city, inScope, now, changed }) {
    this.replica = replica;
    this.city = city;
    this.inScope = inScope;
    this.now = now;
    this.changed = changed;
    /** command_id -> a pending entity made from the 202 answer. */
    this.posted = new Map();
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
