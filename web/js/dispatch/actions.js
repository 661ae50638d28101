// Actions in flight. The socket is the one source of truth: an action stays
// PENDING from the moment it is typed until a call projection on the socket
// lists its `action_id` in `actions` (the ids whose events have been
// applied). The POST only says how far it got: 202 is published (still
// pending), no HTTP answer is retried with the same action_id (the server
// answers a repeat without publishing twice), a 429 (too many actions) is
// retried once with the same action_id after the server's `Retry-After`
// (shown as waiting meanwhile), any other 4xx or error drops the marker and
// shows the server's message. Past `TARGETS.confirmS` without an echo, the
// action shows as not confirmed but is still watched.

import { post } from '../api.js';
import { TARGETS } from './targets.js';

/** Statuses worth the same action again: no answer, a proxy that lost the server, the broker away. */
const RETRY_STATUS = new Set([0, 408, 502, 503, 504]);
/** The wait before retrying a 429 that came without a `Retry-After`, seconds. */
const THROTTLED_WAIT_S = 1;
/** Unconfirmed actions kept on screen at most (the oldest goes first). */
const PENDING_KEPT = 32;
/** How long a confirmed action stays on screen as done, ms. */
const DONE_SHOWN_MS = 5000;

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * A UUID v4. `crypto.randomUUID` exists only in secure contexts (HTTPS,
 * localhost); a training room on plain HTTP still gets one from getRandomValues.
 */
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export class Actions {
  /** `now()`: the server's clock, ms; `changed()`: something shown changed. */
  constructor({ now, changed }) {
    this.now = now;
    this.changed = changed;
    /**
     * action_id -> `{action_id, action, city, call_id, units, state, at,
     * attempt, waitS, error}` (`units`: a dispatch's or reassign's);
     * `state`: sending, retrying, throttled (waiting out a 429), published
     * or unconfirmed.
     */
    this.items = new Map();
    /** Recently confirmed: `{action, call_id, at}`, newest last. */
    this.done = [];
    setInterval(() => this.age(), 1000);
  }

  /** The actions not yet confirmed, oldest first, as `{action_id, action, call_id, state}`. */
  list() {
    return [...this.items.values()].map(({ action_id, action, call_id, state }) => ({ action_id, action, call_id, state }));
  }

  /** The pending actions on one call. */
  forCall(call_id) {
    return [...this.items.values()].filter((p) => p.call_id === call_id);
  }

  /** Recently confirmed actions still worth showing. */
  recent() {
    const since = Date.now() - DONE_SHOWN_MS;
    return this.done.filter((d) => d.at >= since);
  }

  /**
   * Sends `action` on a call and resolves when the server has answered (or
   * the retries ran out): `{ok, status, action_id, error?, body?}`.
   */
  async submit({ city, call_id, action, fields }) {
    const action_id = uuid();
    const p = { action_id, action, city, call_id, units: (fields && fields.units) || null, state: 'sending', at: this.now(), attempt: 0, waitS: null, error: null };
    this.items.set(action_id, p);
    if (this.items.size > PENDING_KEPT) this.items.delete(this.items.keys().next().value);
    this.changed();
    const path = `/api/calls/${encodeURIComponent(city)}/${encodeURIComponent(call_id)}/actions`;
    const body = { action, action_id, ...fields };
    for (;;) {
      try {
        const answer = await post(path, body);
        if (p.state === 'sending' || p.state === 'retrying') p.state = 'published';
        this.changed();
        return { ok: true, status: 202, action_id, body: answer };
      } catch (e) {
        if (e.status === 429 && p.waitS == null && p.state !== 'done' && !e.login) {
          const waitS = e.retryAfter ?? THROTTLED_WAIT_S;
          if (waitS <= TARGETS.throttledMaxS) {
            p.state = 'throttled';
            p.waitS = waitS;
            this.changed();
            await sleep(waitS * 1000);
            if (p.state === 'done') return { ok: true, status: 0, action_id };
            // Nothing was accepted yet: the confirmation time counts from the resend.
            p.state = 'sending';
            p.at = this.now();
            this.changed();
            continue;
          }
        }
        const retry = RETRY_STATUS.has(e.status) && !e.login;
        const waits = TARGETS.retryMs;
        if (retry && p.attempt < waits.length && p.state !== 'done') {
          p.state = 'retrying';
          p.attempt++;
          this.changed();
          await sleep(waits[p.attempt - 1]);
          // The echo may come while we wait: the action arrived after all.
          if (p.state === 'done') return { ok: true, status: 0, action_id };
          continue;
        }
        if (p.state === 'done') return { ok: true, status: e.status, action_id };
        if (retry) {
          // Out of retries without an answer: it may still have arrived, so it stays watched.
          p.state = 'unconfirmed';
          p.error = e.message;
        } else {
          this.items.delete(action_id);
        }
        this.changed();
        return { ok: false, status: e.status, action_id, error: e.message, body: e.body };
      }
    }
  }

  /** A call projection from the socket: its `actions` confirm the pending ones. */
  observe(call) {
    if (!this.items.size || !Array.isArray(call.actions)) return;
    let any = false;
    for (const id of call.actions) {
      const p = this.items.get(id);
      if (!p) continue;
      p.state = 'done';
      this.items.delete(id);
      this.done.push({ action: p.action, call_id: p.call_id, at: Date.now() });
      any = true;
    }
    if (!any) return;
    if (this.done.length > 8) this.done.splice(0, this.done.length - 8);
    this.changed();
  }

  /** Marks the actions past their confirmation time, and forgets the confirmed ones shown long enough. */
  age() {
    const late = this.now() - TARGETS.confirmS * 1000;
    let any = false;
    for (const p of this.items.values()) {
      if ((p.state === 'sending' || p.state === 'published') && p.at < late) {
        p.state = 'unconfirmed';
        any = true;
      }
    }
    const shown = this.recent();
    if (shown.length !== this.done.length) {
      this.done = shown;
      any = true;
    }
    if (any) this.changed();
  }
}

/** How a pending action reads on screen: `{text, sev}` ("menjawab… · menunggu konfirmasi", amber once unconfirmed). */
export function pendingView(t, p) {
  const vars = { n: p.attempt, of: TARGETS.retryMs.length, s: p.waitS };
  return { text: `${t(`act.${p.action}`)} ${t(`st.${p.state}`, vars)}`, sev: p.state === 'unconfirmed' ? 'warn' : 'info' };
}
