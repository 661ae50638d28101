// The chime for a new alert of priority 1 or 2, synthesised with WebAudio
// (no audio file, nothing fetched: the pages' CSP allows no media). Browsers
// block audio until a person interacts with the page, so the sound starts
// off and is turned on by a click (`toggle()` must run inside the click
// handler: that is where the AudioContext is made or resumed); a second
// click mutes it again. The patterns follow the idea of IEC 60601-1-8's
// alarm signals: priority 1 is two quick bursts of high pulses, priority 2
// one slower burst of three lower pulses, so the two are told apart by ear.
// In an alarm flood the chime holds back (one per FLOOD_GAP_MS): the sound
// must not add to the flood.

/** Chimes never closer than this, ms: alerts raised together make one chime. */
const GAP_MS = 1500;
/** During an alarm flood, one chime per this long at most, ms. */
const FLOOD_GAP_MS = 10_000;
/** Loudness of a pulse, 0..1: clear over a room's murmur from a PC's speakers, not startling. */
const VOLUME = 0.22;
/** The pulses: `[start s, length s, frequency Hz]`. */
const PATTERNS = {
  1: [
    [0, 0.11, 988],
    [0.16, 0.11, 988],
    [0.32, 0.11, 988],
    [0.72, 0.11, 988],
    [0.88, 0.11, 988],
  ],
  2: [
    [0, 0.18, 659],
    [0.3, 0.18, 659],
    [0.6, 0.18, 659],
  ],
  /** The confirmation when the sound is turned on: one soft pulse. */
  test: [[0, 0.12, 784]],
};
/** Attack and release of each pulse, s (no click at its edges). */
const EDGE_S = 0.012;

const AudioCtx = typeof window !== 'undefined' ? window.AudioContext || window.webkitAudioContext : undefined;

export class Chime {
  /** `changed()`: the sound's state changed (the indicator redraws). */
  constructor({ changed = () => {} } = {}) {
    this.changed = changed;
    this.ctx = null;
    this.on = false;
    this.supported = !!AudioCtx;
    this.lastAt = -Infinity;
    /** Chimes played, and chimes due while the sound was off (for tests and the curious). */
    this.played = 0;
    this.missed = 0;
    this.held = 0;
  }

  /** 'on', 'off' or 'unsupported'. */
  state() {
    return !this.supported ? 'unsupported' : this.on ? 'on' : 'off';
  }

  /** Turns the sound on or off; call it from a click (or key) handler. True when on afterwards. */
  toggle() {
    if (this.on) {
      this.on = false;
      this.changed();
      return false;
    }
    if (!this.supported) return false;
    try {
      if (!this.ctx) this.ctx = new AudioCtx();
      if (this.ctx.state === 'suspended') this.ctx.resume();
    } catch (e) {
      console.warn(`kendali: sound unavailable: ${e && e.message ? e.message : e}`);
      this.supported = false;
      this.changed();
      return false;
    }
    this.on = true;
    this.play(PATTERNS.test);
    this.changed();
    return true;
  }

  /** A new alert `a` was raised (`flood`: the screen is in an alarm flood): chimes if on and not too soon. */
  alert(a, flood = false) {
    if (!this.on || !this.ctx) {
      this.missed++;
      return false;
    }
    const t = performance.now();
    if (t - this.lastAt < (flood ? FLOOD_GAP_MS : GAP_MS)) {
      this.held++;
      return false;
    }
    this.lastAt = t;
    this.played++;
    this.play(PATTERNS[a.priority === 1 ? 1 : 2]);
    return true;
  }

  /** Plays `pattern` now: each pulse a triangle wave with its octave, soft-edged. */
  play(pattern) {
    const ctx = this.ctx;
    if (!ctx) return;
    if (ctx.state === 'suspended') ctx.resume();
    const t0 = ctx.currentTime + 0.02;
    const out = ctx.createGain();
    out.gain.value = VOLUME;
    out.connect(ctx.destination);
    let end = t0;
    for (const [start, length, freq] of pattern) {
      const at = t0 + start;
      const env = ctx.createGain();
      env.gain.setValueAtTime(0, at);
      env.gain.linearRampToValueAtTime(1, at + EDGE_S);
      env.gain.setValueAtTime(1, at + length - EDGE_S);
      env.gain.linearRampToValueAtTime(0, at + length);
      env.connect(out);
      for (const [mult, level] of [[1, 1], [2, 0.25]]) {
        const osc = ctx.createOscillator();
        const g = ctx.createGain();
        osc.type = 'triangle';
        osc.frequency.value = freq * mult;
        g.gain.value = level;
        osc.connect(g).connect(env);
        osc.start(at);
        osc.stop(at + length + 0.02);
      }
      end = Math.max(end, at + length);
    }
    // The nodes go once the last pulse has played.
    setTimeout(() => out.disconnect(), (end - ctx.currentTime + 0.5) * 1000);
  }
}
