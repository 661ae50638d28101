// Replay: the room as it was. With `?at=T` (RFC 3339, e.g.
// `2026-12-05T08:12:00+07:00`) and `&speed=N` (1 to 16) a screen plays back
// from the store instead of going live: its clock runs from T at N times real
// speed, and about once a second the state at the replayed time
// (`GET /api/state?at=`) replaces the replica's, as a snapshot frame would.
// A banner says so, with play, pause, a step of ten seconds, the speed and
// the way back to live; the screen is read-only (api.js refuses actions).
// It reads only the store: no websocket, nothing of the live state.

import { h, text } from '../dom.js';
import { get, setReadOnly } from '../api.js';

export const SPEEDS = [1, 2, 4, 8, 16];
/** How often the replayed state is fetched, ms of real time. */
const FETCH_EVERY_MS = 1000;
/** A step while paused: this much replayed time, ms. */
const STEP_MS = 10_000;

/** `?at=` as ms, or null; a `+` in the query reads as a space. */
export function replayAt(query) {
  const at = query.get('at');
  if (!at) return null;
  const ms = Date.parse(at.trim().replace(' ', '+'));
  return Number.isFinite(ms) ? ms : NaN;
}

/** How long before a moment a link into replay starts, ms: the lead-up shows. */
export const LEAD_MS = 60_000;

/**
 * A link into replay: the wall (or `path`) at `whenMs` minus the lead-up,
 * at ×4 (`/?at=...&speed=4&city=...`), for an alert, a report line, an audit row.
 */
export function replayHref(whenMs, { city = null, path = '/' } = {}) {
  if (!Number.isFinite(whenMs)) return null;
  const p = new URLSearchParams({ at: new Date(whenMs - LEAD_MS).toISOString(), speed: '4' });
  if (city) p.set('city', city);
  return `${path}?${p}`;
}

/** The replayed clock: T, advancing at `speed` while playing. */
export class ReplayClock {
  constructor(atMs, speed) {
    this.base = atMs;
    this.anchor = Date.now();
    this.speed = speed;
    this.playing = true;
  }

  /** The replayed time, ms; never past the present (a replay that catches up stays at now). */
  now() {
    const t = this.playing ? this.base + (Date.now() - this.anchor) * this.speed : this.base;
    return Math.min(t, Date.now());
  }

  /** Keeps the replayed time where it is and goes on from there. */
  rebase() {
    this.base = this.now();
    this.anchor = Date.now();
  }

  play() {
    if (this.playing) return;
    this.anchor = Date.now();
    this.playing = true;
  }

  pause() {
    this.rebase();
    this.playing = false;
  }

  step(ms = STEP_MS) {
    this.rebase();
    this.base = Math.min(this.base + ms, Date.now());
  }

  setSpeed(speed) {
    this.rebase();
    this.speed = speed;
  }

  /** A replay has no server readings to take. */
  sample() {}

  everySecond(onSecond) {
    const next = () => {
      onSecond();
      setTimeout(next, 1000 - (Date.now() % 1000) + 5);
    };
    next();
  }
}

/** The state at `at` (ms) from the store, as a snapshot frame for the replica. */
export async function fetchFrame(atMs, seq) {
  const at = new Date(atMs).toISOString();
  const s = await get(`/api/state?at=${encodeURIComponent(at)}`);
  const updates = [];
  for (const [kind, entities] of Object.entries(s.entities || {})) {
    for (const [key, value] of Object.entries(entities)) {
      updates.push({ kind, key, seq, rx: value.rx || value.last_rx || at, value });
    }
  }
  return { type: 'snapshot', seq, server_time: at, updates, events: [] };
}

/**
 * Plays the replay: fetches the replayed state every second into the
 * replica (one request at a time) and draws the banner with its controls.
 * `window.__kendali.replay` tells tests where it is.
 */
export function startReplay({ shell, replica, clock, i18n, root, onFrame }) {
  setReadOnly(i18n.t('replay_read_only'));
  let seq = 0;
  let busy = false;
  const state = { fetched: 0, failed: 0, lastAt: null };
  async function pull() {
    if (busy) return;
    busy = true;
    const at = clock.now();
    try {
      const frame = await fetchFrame(at, ++seq);
      state.fetched++;
      state.lastAt = at;
      onFrame(frame);
    } catch (e) {
      state.failed++;
      state.error = e && e.message ? e.message : String(e);
    } finally {
      busy = false;
    }
  }

  const live = new URL(location.href);
  live.searchParams.delete('at');
  live.searchParams.delete('speed');
  const time = h('strong', { class: 'replay-time', 'data-role': 'replay-time' });
  const label = h('span', { class: 'replay-label' }, i18n.t('replay_banner'));
  const button = (role, title, glyph, act) => {
    const b = h('button', { type: 'button', 'data-role': role, title, 'aria-label': title }, glyph);
    b.addEventListener('click', () => {
      act();
      draw();
      pull();
    });
    return b;
  };
  const play = button('replay-play', i18n.t('replay_play'), '▶', () => clock.play());
  const pause = button('replay-pause', i18n.t('replay_pause'), '❚❚', () => clock.pause());
  const step = button('replay-step', i18n.t('replay_step'), '+10s', () => clock.step());
  const speed = h('select', { 'data-role': 'replay-speed', 'aria-label': i18n.t('replay_speed') });
  for (const s of SPEEDS) speed.append(h('option', { value: String(s) }, `×${s}`));
  speed.value = String(clock.speed);
  speed.addEventListener('change', () => {
    clock.setSpeed(Number(speed.value));
    draw();
  });
  const toLive = h('a', { class: 'replay-live', 'data-role': 'replay-live', href: live.pathname + live.search }, i18n.t('replay_live'));
  const bar = h('div', { class: 'replay-bar', 'data-role': 'replay' }, label, time, play, pause, step, speed, toLive);
  root.append(bar);
  root.dataset.replay = 'true';
  document.body.dataset.replay = 'true';

  function draw() {
    const now = clock.now();
    text(time, `${i18n.date(now)} ${i18n.clock(now)} ${i18n.zone || ''}`.trim());
    play.disabled = clock.playing;
    pause.disabled = !clock.playing;
    bar.dataset.playing = String(clock.playing);
  }

  const k = window.__kendali;
  k.replay = {
    at: () => clock.now(),
    speed: () => clock.speed,
    playing: () => clock.playing,
    state,
  };
  shell.replay = k.replay;
  draw();
  pull();
  setInterval(() => {
    draw();
    if (clock.playing || state.lastAt !== clock.now()) pull();
  }, FETCH_EVERY_MS);
}
