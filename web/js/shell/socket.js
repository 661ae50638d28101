// The socket: one websocket to `/ws`, kept alive without anyone touching the
// screen. It resumes with `since=` after a cut (no page reload: the shell
// builds each URL from the subscription and the replica's resume point),
// treats ~5 s without any frame (the server sends a heartbeat about every
// second) as a dead connection, and retries with capped exponential backoff
// and jitter.

/** No frame at all for this long: the connection is dead even if TCP has not noticed. */
const DEAD_AFTER_MS = 5000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/**
 * An application ping this often: the `pong` carries the server's clock (a
 * busy subscription gets deltas, which carry none, and no heartbeats).
 */
const PING_EVERY_MS = 10_000;
/** Close codes after which the server asks for a resume: at once when lagging, after a short pause when it restarts. */
const RESUME_AFTER_MS = new Map([
  [4001, 0],
  [1001, 1000],
]);

export class Socket {
  /**
   * `url(since)`: the websocket URL to open; `onFrame(frame, bytes)`: every
   * parsed frame; `onState(state, attempt)`: 'connecting' | 'live' | 'reconnecting'.
   */
  constructor({ url, onFrame, onState }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.everLive = false;
    this.lastMessageAt = 0;
    this.retryTimer = null;
    this.reconnects = 0;
    this.currentUrl = null;
    this.watchdog = setInterval(() => this.check(), 500);
    this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
  }

  start() {
    this.open();
  }

  open() {
    this.retryTimer = null;
    const url = this.url();
    this.currentUrl = url;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    this.openedAt = Date.now();
    this.lastMessageAt = Date.now();
    let live = false;
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      this.lastMessageAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch (e) {
        console.warn('kendali: a frame that is not JSON was ignored');
        return;
      }
      if (!live) {
        live = true;
        this.everLive = true;
        this.attempt = 0;
        this.onState('live', 0);
        this.ping();
      }
      this.onFrame(frame, m.data.length);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry(RESUME_AFTER_MS.has(e.code) ? RESUME_AFTER_MS.get(e.code) : null);
    };
    // An error is always followed by a close; the close decides.
    ws.onerror = () => {};
  }

  /** Drops the current socket (if any) and schedules the next attempt. */
  retry(delayMs = null) {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch (e) {
        /* already closed */
      }
    }
    if (this.retryTimer) return;
    this.attempt++;
    this.reconnects++;
    this.onState(this.everLive ? 'reconnecting' : 'connecting', this.attempt);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt - 1, 10));
    const wait = delayMs ?? base * (0.8 + Math.random() * 0.4);
    this.nextAttemptAt = Date.now() + wait;
    this.retryTimer = setTimeout(() => this.open(), wait);
  }

  ping() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send('{"type":"ping"}');
  }

  /** The watchdog: a socket silent past DEAD_AFTER_MS is dead. */
  check() {
    if (!this.ws) return;
    if (Date.now() - this.lastMessageAt > DEAD_AFTER_MS) this.retry();
  }
}
