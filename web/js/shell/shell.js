// The shell: what every Kendali screen shares, so that a screen is a page,
// its panels and a few declarations (see wall.js). `mount(page)` reads the
// URL (`lang`, `city`), asks who is watching (`/api/me`) and loads the
// scenario, lets the page place its panels, then runs the replica, the socket
// (resuming with `since`), the render scheduler, the banners, the clock and
// the stats in `window.__kendali`. With `?at=` it replays instead
// (replay.js): the store's state at the replayed time, no websocket.
//
// A page is `{root, panels, subscription(shell), setup(shell), staleFamilies?}`: `root` holds the banners; `panels` maps a type to its
// module (`create(el, ctx) -> {kinds, clock, minMs?, render(job)}`);
// `subscription` gives the `/ws` query (null values left out); `setup` places
// the panels and returns `{panels: [{type, el, options}], ctx?, stats?(), sizes?()}`.

import { I18n, zoneOf } from '../i18n.js';
import { get } from '../api.js';
import { Replica } from '../replica.js';
import { Banners } from './banners.js';
import { ServerClock } from './clock.js';
import { Scheduler } from './scheduler.js';
import { whoAmI, userChip } from './session.js';
import { Socket } from './socket.js';
import { ReplayClock, SPEEDS, replayAt, startReplay } from './replay.js';
import { defineStats } from './stats.js';

/** A screen that could not start tries again this much later (e.g. after a server restart). */
const RETRY_START_MS = 10_000;
/** A signed-in screen whose socket keeps failing checks its session every this many attempts. */
const SESSION_PROBE_EVERY = 3;

/** Mounts `page`; resolves to the shell once live data can flow. */
export async function mount(page) {
  try {
    return await start(page);
  } catch (e) {
    if (e && e.login) return null; // on the way to the login page
    console.error('kendali: the screen could not start:', e && e.stack ? e.stack : e);
    page.root.textContent = `Kendali: ${e && e.message ? e.message : e}`;
    page.root.classList.add('failed');
    // A screen must come back on its own.
    setTimeout(() => location.reload(), RETRY_START_MS);
    return null;
  }
}

/** The city's geometry and services (the simulated city's scenario, an imported city's map), or null when the server knows none. */
async function fetchScenario(city) {
  try {
    return await get(city ? `/api/scenario?city=${encodeURIComponent(city)}` : '/api/scenario');
  } catch (e) {
    if (e.login) throw e;
    return null;
  }
}

async function start(page) {
  const k = (window.__kendali = window.__kendali || { errors: [] });
  const query = new URLSearchParams(location.search);
  const i18n = new I18n(query.get('lang'));
  document.documentElement.lang = i18n.lang;
  const [me, scenario] = await Promise.all([whoAmI(), fetchScenario(query.get('city'))]);
  const city = query.get('city') || (scenario && scenario.city) || null;
  // The city's clock: its zone before any panel formats a time.
  i18n.setZone(zoneOf(me.time_zones, city));
  const at = replayAt(query);
  if (Number.isNaN(at)) throw new Error(i18n.t('replay_bad_at', { at: query.get('at') }));
  const speed = Number(query.get('speed')) || 1;
  const clock = at == null ? new ServerClock() : new ReplayClock(Math.min(at, Date.now()), SPEEDS.includes(speed) ? speed : 1);
  const replica = new Replica({ city, now: () => clock.now() });
  const shell = { query, i18n, me, scenario, city, clock, replica, root: page.root, replaying: at != null };
  shell.conn = { state: at == null ? 'connecting' : 'replay', attempt: 0, since: Date.now() };
  shell.now = () => clock.now();

  const banners = new Banners(page.root, { shell, replica, i18n, staleFamilies: page.staleFamilies });
  const scheduler = new Scheduler({ now: shell.now, warm: () => replica.stats.frames > 0, afterDraw: (now) => banners.draw(now) });
  shell.invalidate = (kind, key) => scheduler.invalidate(kind, key);
  replica.onChange = shell.invalidate;

  const placed = await page.setup(shell);
  const ctx = { shell, replica, i18n, scenario, city, me, invalidate: shell.invalidate, ...(placed.ctx || {}) };
  for (const { type, el, options } of placed.panels) {
    const mod = page.panels[type];
    if (!mod) {
      console.warn(`kendali: unknown panel type "${type}"`);
      continue;
    }
    scheduler.add({ type, ...mod.create(el, { ...ctx, options: options || {} }) });
  }
  const chip = userChip(me, i18n);
  if (chip) document.body.append(chip);

  clock.everySecond(() => scheduler.tick());

  if (shell.replaying) {
    startReplay({
      shell,
      replica,
      clock,
      i18n,
      root: page.root,
      onFrame: (frame) => {
        replica.apply(frame);
        scheduler.invalidate('conn');
      },
    });
    defineStats(k, { replica, scheduler, socket: null, shell, page: placed });
    k.shell = shell;
    k.replica = k.model = replica;
    k.ready = true;
    return shell;
  }

  const socket = new Socket({
    url: () => socketUrl(page.subscription(shell), replica),
    onFrame: (frame, bytes) => {
      if (frame.server_time) clock.sample(Date.parse(frame.server_time));
      replica.apply(frame, bytes);
      scheduler.invalidate('conn');
    },
    onState: (state, attempt) => {
      const c = shell.conn;
      if (c.state !== state) shell.conn = { state, attempt, since: Date.now() };
      else c.attempt = attempt;
      scheduler.invalidate('conn');
      // A browser hides why a websocket was refused: for a signed-in user, an
      // expired session is one reason, and /api/me's 401 leads to the login page.
      if (!me.anonymous && state !== 'live' && attempt % SESSION_PROBE_EVERY === 0) whoAmI().catch(() => {});
    },
  });
  shell.socket = socket;
  socket.start();

  defineStats(k, { replica, scheduler, socket, shell, page: placed });
  k.shell = shell;
  k.replica = k.model = replica;
  k.socket = socket;
  Object.defineProperty(k, 'socketUrl', { configurable: true, get: () => socket.currentUrl });
  k.ready = true;
  return shell;
}

/** The `/ws` URL for a subscription, resuming from the replica's point once it holds a snapshot. */
function socketUrl(subscription, replica) {
  const p = new URLSearchParams();
  for (const [key, v] of Object.entries(subscription)) if (v != null && v !== false) p.set(key, String(v));
  // Resume once we hold a snapshot (its epoch is known), even from seq 0:
  // a snapshot taken before the hub's first update is a valid point.
  const since = replica.resumeSeq();
  if (since != null && replica.epoch != null) {
    p.set('since', String(since));
    p.set('epoch', String(replica.epoch));
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws?${p}`;
}
