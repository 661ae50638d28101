// The server's clock, as this screen knows it, and the screen's second. The
// screen's PC may be minutes off: every frame's `server_time` is a reading,
// and clocks on screen count from the server's time. Times are shown in the
// city's local time (WIB) by i18n.js; this module only says when it is.

/** Server clock readings kept (heartbeats come about once a second: the last half minute). */
const CLOCK_SAMPLES = 30;

export class ServerClock {
  constructor() {
    this.offsetMs = 0;
    this.samples = [];
  }

  /** The server's clock now, ms. */
  now() {
    return Date.now() + this.offsetMs;
  }

  /**
   * One reading of the server clock. A frame arrives some time after its
   * `server_time` was written (a big snapshot takes a while), so the reading
   * with the largest server-minus-local difference is the least delayed: the
   * offset is the largest of the last few readings.
   */
  sample(serverMs) {
    if (!Number.isFinite(serverMs)) return;
    const s = this.samples;
    s.push(serverMs - Date.now());
    if (s.length > CLOCK_SAMPLES) s.shift();
    this.offsetMs = Math.max(...s);
  }

  /** Calls `onSecond()` now and just after every second turns on the server's clock. */
  everySecond(onSecond) {
    const next = () => {
      onSecond();
      setTimeout(next, 1000 - (this.now() % 1000) + 5);
    };
    next();
  }
}
