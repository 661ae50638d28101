// City services: one tile per service (titles and headline KPIs from the
// scenario, else from the KPIs that arrive): the headline value coloured
// against its target, the target itself, a sparkline of the last hours drawn
// here from the samples the wall has gathered (kpi-history.js),
// the second KPI when there is one; and a tile of open complaints per OPD.
// A service whose KPI feed is stale greys its tile and says since when; when
// all are stale the whole panel does. More services than fit (a city runs
// 150): the panel pages through them by category (the scenario's; services
// it does not name are "lainnya"), a page every `page_s` seconds, the title
// saying which ("LAYANAN KOTA · KESEHATAN · 2/9"); /services shows them all.
// Options: `columns` (default: as many as fit), `page_s` (default 15).

import { h, s, text, sev, attr, cls, keyed } from '../dom.js';
import { frame, freshness, newestOf } from './frame.js';
import { kpiSeverity, lowerIsBetter } from '../targets.js';

/** A tile is read from across the room at this height or more, in rem. */
const MIN_TILE_REM = 7;
/** A tile's least width (the grid's minmax), and the gap, in rem (wall.css). */
const TILE_W_REM = 10.5;
const GAP_REM = 0.5;
/** The group of services the catalogue does not place. */
const OTHER = 'lainnya';
/** Sparkline drawing width in buckets (each bucket draws its min and max). */
const SPARK_BUCKETS = 96;
/** The sparkline spans the gathered history, at least this long and at most the ring. */
const SPARK_MIN_SPAN_MS = 10 * 60_000;
const SPARK_MAX_SPAN_MS = 4 * 3600_000;
const VB_W = 200;
const VB_H = 50;

export function create(el, { replica, kpi, i18n, scenario, layout, options }) {
  const f = frame(el, i18n.t('services_title'));
  const grid = h('div', { class: 'tiles' });
  if (options.columns) grid.style.gridTemplateColumns = `repeat(${Number(options.columns)}, minmax(0, 1fr))`;
  f.body.append(grid);
  const tiles = new Map();

  const complaints = buildComplaints();
  grid.append(complaints.tile);

  // Services known from the scenario, in its order; others appear as their KPIs arrive.
  for (const sv of scenario?.services || []) {
    const head = sv.kpis?.[0];
    addTile(sv.id, sv.title, head?.metric, head?.target, head?.unit, sv.kpis?.[1]?.metric, sv.category);
  }
  const pageMs = 1000 * (Number(options.page_s) > 0 ? Number(options.page_s) : 15);
  let page = 0;
  let pageAt = 0;

  /** How many tiles the panel shows readably. */
  function capacity() {
    const rem = layout?.font_px || 16;
    const w = grid.clientWidth;
    const hgt = grid.clientHeight;
    if (!w || !hgt) return Infinity;
    const cols = Number(options.columns) || Math.max(1, Math.floor((w + GAP_REM * rem) / ((TILE_W_REM + GAP_REM) * rem)));
    const rows = Math.max(1, Math.floor((hgt + GAP_REM * rem) / ((MIN_TILE_REM + GAP_REM) * rem)));
    return cols * rows;
  }

  /** Shows one page of categories when the tiles do not all fit; turns it every `page_s`. */
  function paginate(now) {
    const list = [...tiles.values()];
    const room = capacity() - 1; // the complaints tile stays on every page
    if (list.length <= room || room < 1) {
      for (const t of list) t.tile.hidden = false;
      text(f.title, i18n.t('services_title'));
      delete el.dataset.page;
      return;
    }
    const byCategory = new Map();
    for (const t of list) {
      const c = t.category || OTHER;
      if (!byCategory.has(c)) byCategory.set(c, []);
      byCategory.get(c).push(t);
    }
    const order = [...byCategory.keys()].sort((a, b) => (a === OTHER) - (b === OTHER));
    const pages = [];
    for (const c of order) {
      const ts = byCategory.get(c);
      for (let i = 0; i < ts.length; i += room) pages.push({ category: c, tiles: ts.slice(i, i + room) });
    }
    if (!pageAt) pageAt = now;
    if (now - pageAt >= pageMs) {
      page += 1;
      pageAt = now;
    }
    page %= pages.length;
    const shown = new Set(pages[page].tiles);
    for (const t of list) t.tile.hidden = !shown.has(t);
    text(f.title, `${i18n.t('services_title')} · ${pages[page].category.toUpperCase()} · ${page + 1}/${pages.length}`);
    el.dataset.page = `${page + 1}/${pages.length}`;
  }

  function addTile(id, title, metric, target, unit, second, category) {
    const titleEl = h('div', { class: 'tile-title' }, title);
    const value = h('span', { class: 'kpi-value' });
    const metricEl = h('div', { class: 'kpi-name' });
    const targetEl = h('div', { class: 'kpi-target' });
    const line = s('polyline', { class: 'spark-line', points: '' });
    const area = s('polygon', { class: 'spark-area', points: '' });
    const tline = s('line', { class: 'spark-target', x1: 0, x2: VB_W, y1: -10, y2: -10 });
    // The line stretches with the tile (preserveAspectRatio none); the dot is HTML so it stays round.
    const dot = h('span', { class: 'spark-dot', hidden: true });
    const spark = s('svg', { class: 'spark', viewBox: `0 0 ${VB_W} ${VB_H}`, preserveAspectRatio: 'none' }, area, tline, line);
    const span = h('span', { class: 'spark-span' });
    const sub = h('div', { class: 'tile-sub' });
    const since = h('div', { class: 'tile-since' });
    const tile = h(
      'div',
      { class: 'tile', 'data-service': id },
      titleEl,
      h('div', { class: 'kpi-row' }, value),
      targetEl,
      metricEl,
      h('div', { class: 'spark-wrap' }, spark, dot, span),
      sub,
      since,
    );
    const t = { id, title, metric, target, unit, second, category: category || OTHER, tile, titleEl, value, metricEl, targetEl, line, area, tline, dot, span, sub, since, drawnAt: 0 };
    tiles.set(id, t);
    grid.insertBefore(tile, complaints.tile);
    return t;
  }

  function buildComplaints() {
    const list = h('div', { class: 'bars compact' });
    const empty = h('div', { class: 'empty' }, i18n.t('no_complaints'));
    const total = h('span', { class: 'count' });
    const tile = h('div', { class: 'tile complaints', 'data-service': 'complaints' }, h('div', { class: 'tile-title' }, i18n.t('complaints_title'), total), list, empty);
    return { tile, list, empty, total };
  }

  function kpiOf(service, metric) {
    const key = `${replica.city || ''}/${service}/${metric}`;
    const e = replica.get('kpi').get(key);
    if (e) return { key, v: e.value };
    if (!replica.city) {
      for (const [k, x] of replica.get('kpi')) if (x.value.service === service && x.value.metric === metric) return { key: k, v: x.value };
    }
    return { key, v: null };
  }

  /** Discovers services and headline metrics from KPIs when the scenario did not name them. */
  function discover() {
    for (const { value: v } of replica.get('kpi').values()) {
      if (replica.city && v.city !== replica.city) continue;
      const t = tiles.get(v.service);
      if (!t) addTile(v.service, v.service.replace(/(^|_)(\w)/g, (_, d, c) => (d ? ' ' : '') + c.toUpperCase()), v.metric, null, v.unit, null);
      else if (!t.metric) t.metric = v.metric;
    }
  }

  function drawSpark(t, ring, target, now) {
    if (!ring || !ring.length) {
      attr(t.line, 'points', '');
      attr(t.area, 'points', '');
      t.dot.hidden = true;
      text(t.span, '');
      return;
    }
    const first = ring.at(0)[0];
    const spanMs = Math.min(SPARK_MAX_SPAN_MS, Math.max(SPARK_MIN_SPAN_MS, now - first));
    const t0 = now - spanMs;
    const lo = new Float64Array(SPARK_BUCKETS).fill(Infinity);
    const hi = new Float64Array(SPARK_BUCKETS).fill(-Infinity);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < ring.length; i++) {
      const [ts, v] = ring.at(i);
      if (ts < t0) continue;
      const b = Math.min(SPARK_BUCKETS - 1, Math.max(0, Math.floor(((ts - t0) / spanMs) * SPARK_BUCKETS)));
      if (v < lo[b]) lo[b] = v;
      if (v > hi[b]) hi[b] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (target != null) {
      min = Math.min(min, target);
      max = Math.max(max, target);
    }
    if (!(max > min)) {
      max = min + 1;
      min -= 1;
    }
    const pad = (max - min) * 0.12;
    min -= pad;
    max += pad;
    const y = (v) => (VB_H - ((v - min) / (max - min)) * VB_H).toFixed(1);
    const pts = [];
    let lastX = 0;
    let lastY = 0;
    for (let b = 0; b < SPARK_BUCKETS; b++) {
      if (lo[b] === Infinity) continue;
      const x = ((b + 0.5) / SPARK_BUCKETS) * VB_W;
      pts.push(`${x.toFixed(1)},${y(lo[b])}`);
      if (hi[b] !== lo[b]) pts.push(`${x.toFixed(1)},${y(hi[b])}`);
      lastX = x;
      lastY = y(ring.last()[1]);
    }
    const firstX = pts.length ? pts[0].split(',')[0] : '0';
    attr(t.line, 'points', pts.join(' '));
    attr(t.area, 'points', pts.length ? `${firstX},${VB_H} ${pts.join(' ')} ${lastX.toFixed(1)},${VB_H}` : '');
    t.dot.hidden = !pts.length;
    t.dot.style.left = `${((lastX / VB_W) * 100).toFixed(2)}%`;
    t.dot.style.top = `${((lastY / VB_H) * 100).toFixed(2)}%`;
    if (target != null) {
      attr(t.tline, 'y1', y(target));
      attr(t.tline, 'y2', y(target));
    }
    text(t.span, i18n.t('spark_span', { span: i18n.age(spanMs / 1000) }));
  }

  function renderTile(t, now, feedsAll) {
    const { key, v } = kpiOf(t.id, t.metric);
    // The catalogue's target (the city's) before the one the sample carries.
    const target = t.target ?? v?.target;
    const unit = v?.unit ?? t.unit;
    const lower = lowerIsBetter(t.metric || '', unit);
    text(t.value, v ? i18n.kpi(v.value, unit) : '–');
    const sv = v ? kpiSeverity(v.value, target, lower) : 'none';
    sev(t.value, sv);
    attr(t.tile, 'data-sev', sv);
    text(t.metricEl, t.metric ? i18n.metric(t.metric) : '');
    text(t.targetEl, target != null ? i18n.t(lower ? 'target_le' : 'target_ge', { v: i18n.kpi(target, unit) }) : '');
    if (t.second) {
      const s2 = kpiOf(t.id, t.second).v;
      text(t.sub, s2 ? `${i18n.metric(t.second)}: ${i18n.kpi(s2.value, s2.unit)}` : '');
    }
    drawSpark(t, kpi.get(key), target, now);
    t.drawnAt = now;
    renderFreshness(t, feedsAll);
  }

  function renderFreshness(t, feedsAll) {
    const since = feedsAll.staleSources.get(t.id);
    cls(t.tile, 'stale', since != null);
    text(t.since, since != null ? i18n.t('since', { time: i18n.time(since, true) }) : '');
  }

  function renderComplaints() {
    const m = replica.get('counters');
    const c = (replica.city && m.get(replica.city)?.value) || m.values().next().value?.value || null;
    const open = Object.entries((c && c.complaints_open) || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const max = open.reduce((a, [, n]) => Math.max(a, n), 1);
    const sum = open.reduce((a, [, n]) => a + n, 0);
    text(complaints.total, sum ? ` · ${i18n.num(sum)}` : '');
    complaints.empty.hidden = open.length > 0;
    keyed(
      complaints.list,
      open.slice(0, 6),
      ([opd]) => opd,
      () => h('div', { class: 'bar-row' }, h('span', { class: 'bar-label' }), h('div', { class: 'bar-track' }, h('div', { class: 'bar-fill' })), h('span', { class: 'bar-value' })),
      (row, [opd, n]) => {
        text(row.children[0], opd.toUpperCase());
        row.children[1].firstChild.style.width = `${Math.round((100 * n) / max)}%`;
        text(row.children[2], i18n.num(n));
      },
    );
  }

  function render({ dirty, keys, tick, now }) {
    const feedsAll = replica.feeds('kpi');
    freshness(f, feedsAll, i18n, now, newestOf(replica, ['kpi']));
    if (dirty.has('kpi')) discover();
    const changed = new Set();
    for (const key of keys.get('kpi') || []) changed.add(key.split('/')[1]);
    for (const t of tiles.values()) {
      // A tile redraws when its KPIs changed, and at least every 30 s (the sparkline's time axis moves).
      if (changed.has(t.id) || now - t.drawnAt > 30_000) renderTile(t, now, feedsAll);
      else if (dirty.has('feed') || tick) renderFreshness(t, feedsAll);
    }
    if (dirty.has('counters')) renderComplaints();
    if (tick || dirty.has('kpi')) paginate(now);
  }

  return { kinds: ['kpi', 'feed', 'counters', 'conn'], clock: true, render };
}
