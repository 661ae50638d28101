// The wall's entry point: reads the URL (`lang`, `layout`, `screen`, `city`),
// loads the layout and the scenario geometry, mounts the panels, opens the
// socket and runs the render scheduler. Frames are applied to the model as
// they arrive; rendering happens at most once per animation frame and only
// for panels whose data changed (or that show a running clock).
// `window.__kendali.stats` reports what it costs.

import { I18n } from './i18n.js';
import { loadLayout, mountLayout, viewport } from './layout.js';
import { Model } from './model.js';
import { Socket } from './socket.js';
import * as status from './panels/status.js';
import * as calls from './panels/calls.js';
import * as map from './panels/map.js';
import * as traffic from './panels/traffic.js';
import * as services from './panels/services.js';
import * as ticker from './panels/ticker.js';

const PANELS = { status, calls, map, traffic, services, ticker };

/** What the wall subscribes to: every entity kind it shows, call events for surges; no app events. */
const KINDS = 'intersection,call,unit,kpi,counters,feed,call_event';
/** Per-entity update cap (the wall reads from metres away: 2 updates/s per entity is plenty). */
const MAX_RATE = 2;
/**
 * Ask for `view=summary` (intersections without metadata and per-approach
 * figures) when the scenario gives names, positions and approach names.
 * Off until the hub accepts the parameter: an unknown one is refused with 400.
 */
const SUMMARY_VIEW = true;

const k = (window.__kendali = window.__kendali || { errors: [] });

async function fetchScenario() {
  try {
    const res = await fetch('/api/scenario', { cache: 'no-cache' });
    return res.ok ? await res.json() : null;
  } catch (e) {
    return null;
  }
}

/** How far back the sparklines reach at load, and the bucket asked of the history API. */
const HISTORY_SPAN_MS = 4 * 3600_000;
const HISTORY_BUCKET = '2m';

/**
 * Fills the sparklines with the last hours from the server's history API
 * (`/api/history/kpi/...`, one request per headline and second KPI of the
 * scenario's services); live samples carry on from there. Best effort.
 */
async function loadKpiHistory(model, scenario, city) {
  if (!city || !scenario?.services) return;
  const from = encodeURIComponent(new Date(Date.now() - HISTORY_SPAN_MS).toISOString());
  const wanted = scenario.services.flatMap((sv) => (sv.kpis || []).slice(0, 1).map((k) => [sv.id, k.metric]));
  await Promise.all(
    wanted.map(async ([service, metric]) => {
      try {
        const res = await fetch(`/api/history/kpi/${encodeURIComponent(city)}/${encodeURIComponent(service)}/${encodeURIComponent(metric)}?from=${from}&bucket=${HISTORY_BUCKET}`);
        if (!res.ok) return;
        const body = await res.json();
        const points = (body.points || []).map((p) => [Date.parse(p.t), p.avg]);
        model.prefillKpi(`${city}/${service}/${metric}`, points);
      } catch (e) {
        /* no history: the sparkline starts with the live samples */
      }
    }),
  );
}

async function start() {
  const q = new URLSearchParams(location.search);
  const i18n = new I18n(q.get('lang'));
  document.documentElement.lang = i18n.lang;
  const [layout, scenario] = await Promise.all([loadLayout(q.get('layout')), fetchScenario()]);
  const city = q.get('city') || (scenario && scenario.city) || null;
  const model = new Model({ city, scenario });
  const wall = document.getElementById('wall');
  const vp = viewport(layout, q.get('screen'));
  const banner = document.createElement('div');
  banner.className = 'conn-banner';
  banner.hidden = true;
  wall.append(banner);

  const ctx = { model, i18n, scenario, layout, vp, city };
  const panels = mountLayout(wall, layout, vp).map(({ type, options, el }) => {
    const mod = PANELS[type];
    if (!mod) {
      console.warn(`kendali: unknown panel type "${type}" in layout ${layout.name}`);
      return null;
    }
    return { type, ...mod.create(el, { ...ctx, options }) };
  }).filter(Boolean);

  // ---- render scheduler: at most one render per animation frame.
  // msMax counts from the first second after the first data (building the DOM is a one-off);
  // msMaxFirst is that first build.
  const render = { count: 0, ms: 0, msMax: 0, msMaxFirst: 0, msLast: 0, skippedHidden: 0, panelRenders: 0, warmAt: 0 };
  let scheduled = false;
  let followUp = null;
  let tick = true;
  for (const p of panels) {
    p.pending = new Set(p.kinds);
    p.pendingKeys = new Map();
    p.pendingTick = true;
  }
  const request = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  };
  // Panels that change their own size or capacity mark the model dirty: render soon.
  model.onDirty = request;
  function draw() {
    scheduled = false;
    if (document.hidden) {
      render.skippedHidden++;
      return;
    }
    const t0 = performance.now();
    const dirty = model.dirty;
    const keys = model.dirtyKeys;
    const isTick = tick;
    model.dirty = new Set();
    model.dirtyKeys = new Map();
    tick = false;
    const now = model.serverNow();
    let later = Infinity;
    for (const p of panels) {
      // Each panel collects what changed for it; a panel with a minimum interval
      // (the map: markers need not move 60 times a second) waits for its turn.
      for (const kind of p.kinds) if (dirty.has(kind)) p.pending.add(kind);
      for (const [kind, set] of keys) {
        if (!p.kinds.includes(kind)) continue;
        let mine = p.pendingKeys.get(kind);
        if (!mine) p.pendingKeys.set(kind, (mine = new Set()));
        for (const key of set) mine.add(key);
      }
      if (isTick && p.clock) p.pendingTick = true;
      if (!p.pending.size && !p.pendingTick) continue;
      const wait = (p.minMs || 0) - (t0 - (p.lastAt || -Infinity));
      if (wait > 0) {
        later = Math.min(later, wait);
        continue;
      }
      const job = { dirty: p.pending, keys: p.pendingKeys, tick: p.pendingTick, now };
      p.pending = new Set();
      p.pendingKeys = new Map();
      p.pendingTick = false;
      p.lastAt = t0;
      const pt = performance.now();
      p.render(job);
      const pms = performance.now() - pt;
      p.ms = p.ms == null ? pms : p.ms * 0.95 + pms * 0.05;
      p.msMax = Math.max(p.msMax || 0, pms);
      render.panelRenders++;
    }
    if (later < Infinity && !followUp) followUp = setTimeout(() => { followUp = null; request(); }, later + 1);
    drawBanner(now);
    const ms = performance.now() - t0;
    render.count++;
    render.msLast = ms;
    render.ms = render.count === 1 ? ms : render.ms * 0.95 + ms * 0.05;
    if (!render.warmAt && model.stats.frames > 0) render.warmAt = performance.now() + 1000;
    if (render.warmAt && performance.now() > render.warmAt) render.msMax = Math.max(render.msMax, ms);
    else render.msMaxFirst = Math.max(render.msMaxFirst, ms);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      for (const p of panels) p.kinds.forEach((kind) => p.pending.add(kind));
      tick = true;
      request();
    }
  });

  // ---- the connection banner, on every screen (the status strip may be on another one).
  function drawBanner() {
    const c = model.conn;
    const down = c.state !== 'live';
    if (banner.hidden !== !down) banner.hidden = !down;
    wall.dataset.conn = c.state;
    if (down) {
      const attempt = c.attempt > 1 ? ` (${i18n.t('conn_attempt', { n: c.attempt })})` : '';
      const msg = c.state === 'connecting' ? i18n.t('conn_connecting') : i18n.t('conn_banner') + attempt;
      if (banner.textContent !== msg) banner.textContent = msg;
    }
  }

  // ---- clock: one tick per WIB second, aligned to the server's clock.
  const second = () => {
    tick = true;
    request();
    setTimeout(second, 1000 - (model.serverNow() % 1000) + 5);
  };
  second();

  // ---- the socket.
  const socket = new Socket({
    url: () => {
      const p = new URLSearchParams({ kinds: KINDS, max_rate: String(MAX_RATE) });
      if (city) p.set('cities', city);
      if (SUMMARY_VIEW && scenario?.intersections?.length) p.set('view', 'summary');
      // Resume once we hold a snapshot (its epoch is known), even from seq 0:
      // a snapshot taken before the hub's first update is a valid point.
      const since = model.resumeSeq();
      if (since != null && model.epoch != null) {
        p.set('since', String(since));
        if (model.epoch != null) p.set('epoch', String(model.epoch));
      }
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      return `${proto}//${location.host}/ws?${p}`;
    },
    onFrame: (frame, bytes) => {
      model.apply(frame, bytes);
      request();
    },
    onState: (state, attempt) => {
      model.setConnection(state, attempt);
      request();
    },
  });
  socket.start();
  loadKpiHistory(model, scenario, city);

  // Sparkline history survives a reload (e.g. after a browser update).
  setInterval(() => model.saveKpi(), 60_000);
  window.addEventListener('pagehide', () => model.saveKpi());

  // ---- what it costs, for tests and for the operators' curiosity.
  Object.defineProperty(k, 'stats', {
    configurable: true,
    get() {
      const mem = performance.memory;
      return {
        layout: layout.name,
        screen: vp.screen,
        panels: panels.map((p) => p.type),
        frames_applied: model.stats.frames,
        updates_applied: model.stats.updates,
        events_applied: model.stats.events,
        updates_ignored: model.stats.ignored,
        snapshots: model.stats.snapshots,
        resets: model.stats.resets,
        resumes: model.stats.resumes,
        heartbeats: model.stats.heartbeats,
        bytes_received: model.stats.bytes,
        apply_ms_avg: round(model.stats.applyMs),
        apply_ms_max: round(model.stats.applyMsMax),
        renders: render.count,
        panel_renders: render.panelRenders,
        panel_ms_avg: Object.fromEntries(panels.map((p, i) => [`${p.type}${i}`, round(p.ms || 0)])),
        panel_ms_max: Object.fromEntries(panels.map((p, i) => [`${p.type}${i}`, round(p.msMax || 0)])),
        render_ms_avg: round(render.ms),
        render_ms_max: round(render.msMax),
        render_ms_max_first: round(render.msMaxFirst),
        render_ms_last: round(render.msLast),
        reconnects: socket.reconnects,
        connection: model.conn.state,
        last_seq: model.lastSeq,
        resume_seq: model.resumeSeq(),
        server_offset_ms: Math.round(model.offsetMs),
        dom_nodes: document.getElementsByTagName('*').length,
        heap_used_mb: mem ? round(mem.usedJSHeapSize / 1048576) : null,
        heap_total_mb: mem ? round(mem.totalJSHeapSize / 1048576) : null,
        sizes: model.sizes(),
        uptime_s: Math.round((Date.now() - k.bootedAt) / 1000),
      };
    },
  });
  k.model = model;
  k.socket = socket;
  Object.defineProperty(k, 'socketUrl', { configurable: true, get: () => socket.currentUrl });
  k.ready = true;
}

function round(x) {
  return Math.round(x * 100) / 100;
}

start().catch((e) => {
  console.error('kendali: the wall could not start:', e && e.stack ? e.stack : e);
  const wall = document.getElementById('wall');
  wall.textContent = `Kendali: ${e && e.message ? e.message : e}`;
  wall.classList.add('failed');
  // A wall must come back on its own: try again in 10 s (e.g. after a server restart).
  setTimeout(() => location.reload(), 10_000);
});
