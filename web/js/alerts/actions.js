// Acting on alerts: acknowledge, shelve (with a reason, for 1-480 minutes)
// and unshelve, each a POST to `/api/alerts/{alert_id}/{ack|shelve|unshelve}`.
// The socket is the one source of truth: an action stays PENDING from the
// click until the alert's update comes back showing it done (acknowledged:
// `acked_at` set; shelved: `shelved_until` set; unshelved: no
// `shelved_until`; or the update carrying the event id the server answered
// with; or the alert gone), whichever comes first, the POST's 202 or the
// echo. Past CONFIRM_MS without the echo it shows NOT CONFIRMED and is still
// watched. A refusal (4xx) or no answer drops it and shows the server's
// message for a while. It observes the replica for the echoes.

import { post } from '../api.js';
import { alertKey } from './model.js';

/** Without the echo after this long, an action shows as not confirmed (the 202 means published, not applied). */
const CONFIRM_MS = 10_000;
/** A refusal stays on screen this long, ms (long enough to read from the desk). */
const ERROR_SHOWN_MS = 20_000;
/** Actions waiting for their echo, at most (the oldest goes first). */
const PENDING_KEPT = 64;
/** Shelving, minutes: the server takes 1..480 (a shift of 8 hours at most). */
export const SHELVE_MAX_MIN = 480;
/** The shelving the form starts with, minutes: long enough to deal with the cause, short enough to come back in the same shift. */
export const SHELVE_DEFAULT_MIN = 30;

/** Whether `v` (the alert now; null when gone) shows `action` done. */
export function confirmed(action, v, eventId) {
  if (!v) return true;
  if (eventId && v.event_id === eventId) return true;
  if (action === 'ack') return v.acked_at != null;
  if (action === 'shelve') return v.shelved_until != null;
  if (action === 'unshelve') return v.shelved_until == null;
  return false;
}

export class AlertActions {
  /**
   * `replica`; `now()`: the server's clock, ms; `t`: the alerts' words;
   * `changed()`: something shown changed; `failed(text)`: an action was
   * refused (a console's message line).
   */
  constructor({ replica, now, t, changed = () => {}, failed = null }) {
    this.replica = replica;
    this.now = now;
    this.t = t;
    this.changed = changed;
    this.failed = failed;
    /** alert key -> `{key, alert_id, action, state: sending|published|unconfirmed, at, event_id}`. */
    this.pending = new Map();
    /** alert key -> `{action, text, status, until}`. */
    this.errors = new Map();
    setInterval(() => this.age(), 1000);
  }

  /** `{pending, error}` of the alert with key `key` (each null when none). */
  of(key) {
    return { pending: this.pending.get(key) || null, error: this.errors.get(key) || null };
  }

  /** The actions waiting for their echo, for tests: `[{alert_id, action, state}]`. */
  list() {
    return [...this.pending.values()].map(({ alert_id, action, state }) => ({ alert_id, action, state }));
  }

  ack(a, reason) {
    return this.send(a, 'ack', reason ? { reason } : {});
  }

  shelve(a, reason, minutes) {
    return this.send(a, 'shelve', { reason, minutes });
  }

  unshelve(a) {
    return this.send(a, 'unshelve', {});
  }

  /** The alert of key `key` now (null when gone). */
  current(key) {
    return this.replica.get('alert').get(key)?.value || null;
  }

  /**
   * POSTs `action` for alert `a`; resolves once the server answered: `{ok,
   * status, body?, error?}`. One action per alert at a time.
   */
  async send(a, action, body) {
    const key = alertKey(a);
    const busy = this.pending.get(key);
    if (busy) return { ok: false, status: 0, error: this.t(`pending.${busy.action}`) };
    const p = { key, alert_id: a.alert_id, action, state: 'sending', at: this.now(), event_id: null };
    this.pending.set(key, p);
    if (this.pending.size > PENDING_KEPT) this.pending.delete(this.pending.keys().next().value);
    this.errors.delete(key);
    this.changed();
    try {
      const answer = await post(`/api/alerts/${encodeURIComponent(a.alert_id)}/${action}`, body);
      if (this.pending.get(key) === p) {
        p.state = 'published';
        p.event_id = (answer && answer.event_id) || null;
        // The echo may have come before this answer.
        this.check(key, this.current(key));
        this.changed();
      }
      return { ok: true, status: 202, body: answer };
    } catch (e) {
      if (this.pending.get(key) === p) this.pending.delete(key);
      if (e.login) return { ok: false, status: e.status, error: e.message, login: true };
      const reason = e.status ? e.message : this.t('no_answer', { error: e.message });
      const text = this.t('failed', { act: this.t(`act_word.${action}`), error: reason });
      this.errors.set(key, { action, text, status: e.status, until: Date.now() + ERROR_SHOWN_MS });
      if (this.failed) this.failed(text);
      this.changed();
      return { ok: false, status: e.status || 0, error: e.message, body: e.body };
    }
  }

  /** Replica observer hook: an alert's update may be the echo of a pending action. */
  update(kind, key, old, value) {
    if (kind === 'alert' && this.pending.has(key)) this.check(key, value);
  }

  check(key, value) {
    const p = this.pending.get(key);
    if (!p || !confirmed(p.action, value, p.event_id)) return;
    this.pending.delete(key);
    this.changed();
  }

  /** Marks actions past CONFIRM_MS as not confirmed, and forgets refusals shown long enough. */
  age() {
    const late = this.now() - CONFIRM_MS;
    let any = false;
    for (const p of this.pending.values()) {
      if (p.state !== 'unconfirmed' && p.at < late) {
        p.state = 'unconfirmed';
        any = true;
      }
    }
    const t = Date.now();
    for (const [key, e] of this.errors) {
      if (e.until <= t) {
        this.errors.delete(key);
        any = true;
      }
    }
    if (any) this.changed();
  }
}
