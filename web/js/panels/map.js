// City map in SVG, drawn from the scenario geometry (no tiles, nothing from
// outside): districts and roads in outline; each junction as a marker whose
// colour, shape and letter give its grade (worst degree of saturation), so it
// reads without colour; open calls (squares with their priority) and field
// units (triangles with their kind) at their positions; a pulsing halo on
// anything in incident (saturation > 1.0, priority-1 calls).
//
// When the city's shape leaves room beside (or under) it, the densest cluster
// of junctions is drawn again, enlarged, in an inset with a locator box on
// the main map: downtown junctions 500 m apart would otherwise overlap.
// Without scenario geometry the map fits whatever positions the data carries.
// Options: `labels` ("busy": names of junctions graded D..F and offline,
// "all", "none").

import { h, s, text, attr, sev, cls } from '../dom.js';
import { frame, mergeFeeds, freshness, newestOf } from './frame.js';
import { gradeOf, prioritySeverity, receivedAt, INCIDENT_DS } from '../targets.js';

const UNIT_LETTER = { ambulance: 'A', fire_engine: 'D', police_car: 'P', rescue: 'R' };
const UNIT_SEV = { available: 'ok', dispatched: 'busy', en_route: 'busy', on_scene: 'busy', returning: 'info', out_of_service: 'stale' };
/** Markers never exceed this many per kind and view (bounded DOM); the server bounds calls anyway. */
const MAX_MARKERS = 400;
/** Open calls drawn: the most urgent first (priority, then age); the rest are counted. */
const MAX_CALLS_DRAWN = 120;
/** Halos drawn per view (each one animates): incidents first, then the newest P1 calls. */
const MAX_HALOS = 16;
/** The map redraws at most this often: markers need not move 60 times a second. */
const MIN_RENDER_MS = 250;
/** An inset needs at least this share of the panel free beside the city, and this many junctions in the cluster. */
const INSET_MIN_FREE = 0.28;
const INSET_MIN_JUNCTIONS = 4;

export function create(el, { replica, i18n, scenario, options, layout, invalidate }) {
  const f = frame(el, i18n.t('map_title'));
  const labels = options.labels || 'busy';
  const svg = s('svg', { class: 'map-svg', role: 'img', 'aria-label': i18n.t('map_title') });
  const defs = s('defs');
  svg.append(defs);
  const counts = h('div', { class: 'map-counts' });
  const legend = buildLegend(i18n);
  f.body.append(svg, counts, legend);
  f.body.classList.add('map-body');

  const known = new Map((scenario?.intersections || []).map((i) => [i.id, i]));
  const rem = () => layout.font_px; // 1rem, from the layout (reading the computed style would force a style recalc)
  let size = { w: 0, h: 0 };
  let views = [];
  let dataBounds = null;

  // ---------------------------------------------------------------- geometry
  function cityBounds() {
    if (scenario?.districts?.length) return bbox(scenario.districts.flatMap((d) => d.polygon));
    if (scenario?.bounds) return scenario.bounds;
    return dataBounds;
  }

  /** Grows the data bounds (no scenario) to include a point; true if they changed. */
  function include(lat, lon) {
    if (scenario?.bounds || scenario?.districts?.length || !Number.isFinite(lat) || !Number.isFinite(lon)) return false;
    const m = 0.01;
    if (!dataBounds) {
      dataBounds = [[lat - m, lon - m], [lat + m, lon + m]];
      return true;
    }
    const [[so, we], [no, ea]] = dataBounds;
    if (lat >= so && lat <= no && lon >= we && lon <= ea) return false;
    dataBounds = [[Math.min(so, lat - m), Math.min(we, lon - m)], [Math.max(no, lat + m), Math.max(ea, lon + m)]];
    return true;
  }

  /** The bounding box of the densest cluster of junctions, or null. */
  function clusterBounds(city) {
    const pts = [...known.values()].map((i) => [i.lat, i.lon]);
    if (pts.length < INSET_MIN_JUNCTIONS) return null;
    const kx = Math.cos((((city[0][0] + city[1][0]) / 2) * Math.PI) / 180);
    const span = Math.max(city[1][0] - city[0][0], (city[1][1] - city[0][1]) * kx);
    const r = span * 0.09;
    let best = [];
    for (const p of pts) {
      const near = pts.filter((q) => Math.hypot(q[0] - p[0], (q[1] - p[1]) * kx) <= r);
      if (near.length > best.length) best = near;
    }
    if (best.length < INSET_MIN_JUNCTIONS) return null;
    const [[s0, w0], [n0, e0]] = bbox(best);
    const m = Math.max(n0 - s0, (e0 - w0) * kx) * 0.18 + 0.002;
    return [[s0 - m, w0 - m / kx], [n0 + m, e0 + m / kx]];
  }

  // ---------------------------------------------------------------- views
  function makeView(name, b, rect, clip) {
    const proj = fit(b, rect);
    const g = s('g', { class: `view view-${name}` });
    if (clip) {
      const id = `clip-${name}`;
      defs.replaceChildren(s('clipPath', { id }, s('rect', { x: proj.box.x, y: proj.box.y, width: proj.box.w, height: proj.box.h })));
      g.setAttribute('clip-path', `url(#${id})`);
    }
    const layers = {};
    for (const l of ['districts', 'roads', 'districtLabels', 'halos', 'units', 'calls', 'junctions', 'labels']) {
      layers[l] = s('g', { class: l });
      g.append(layers[l]);
    }
    const view = { name, proj, g, layers, markers: { intersection: new Map(), call: new Map(), unit: new Map() }, halos: new Map(), inset: !!clip };
    drawStatic(view);
    return view;
  }

  function drawStatic(v) {
    const path = (pts, close) => pathOf(pts, v.proj.at, close);
    for (const d of scenario?.districts || []) {
      v.layers.districts.append(s('path', { d: path(d.polygon, true), class: 'district' }));
      if (!v.inset) {
        const c = centroid(d.polygon);
        const [x, y] = v.proj.at(c[0], c[1]);
        v.layers.districtLabels.append(s('text', { x: x.toFixed(1), y: y.toFixed(1), class: 'district-label' }, d.name.toUpperCase()));
      }
    }
    // Minor roads first, so that arterials and the toll road draw on top.
    for (const r of roadsInDrawingOrder(scenario?.roads)) v.layers.roads.append(s('path', { d: path(r.polyline, false), class: `road road-${r.class || 'lokal'}` }));
  }

  /** Builds the main view and, room permitting, the inset. */
  function arrange() {
    svg.replaceChildren(defs);
    defs.replaceChildren();
    views = [];
    const city = cityBounds();
    if (!city || !size.w || !size.h) return false;
    attr(svg, 'viewBox', `0 0 ${size.w} ${size.h}`);
    const pad = rem() * 1.2;
    const top = rem() * 2.2; // under the counts line
    const full = { x: pad, y: top, w: size.w - 2 * pad, h: size.h - top - pad };
    let main = fit(city, full);
    const cluster = clusterBounds(city);
    let insetRect = null;
    const freeX = full.w - main.box.w;
    const freeY = full.h - main.box.h;
    if (cluster && freeX >= INSET_MIN_FREE * full.w) {
      const mainRect = { x: full.x, y: full.y, w: main.box.w + freeX * 0.08, h: full.h };
      main = fit(city, mainRect);
      insetRect = { x: mainRect.x + mainRect.w + pad, y: full.y + rem() * 1.4, w: full.x + full.w - (mainRect.x + mainRect.w + pad), h: full.h - rem() * 4 };
    } else if (cluster && freeY >= INSET_MIN_FREE * full.h) {
      const mainRect = { x: full.x, y: full.y, w: full.w, h: main.box.h + freeY * 0.08 };
      main = fit(city, mainRect);
      insetRect = { x: full.x, y: mainRect.y + mainRect.h + pad + rem() * 1.4, w: full.w, h: full.y + full.h - (mainRect.y + mainRect.h + pad) - rem() * 4 };
    }
    const mainView = makeView('main', city, { x: main.box.x, y: main.box.y, w: main.box.w, h: main.box.h }, false);
    svg.append(mainView.g);
    views.push(mainView);
    if (insetRect) {
      const inset = makeView('inset', cluster, insetRect, true);
      const b = inset.proj.box;
      const frameRect = s('rect', { class: 'inset-frame', x: b.x, y: b.y, width: b.w, height: b.h, rx: 4 });
      svg.append(frameRect, inset.g);
      const title = s('text', { class: 'inset-title', x: b.x, y: b.y - rem() * 0.7 }, clusterName(cluster));
      svg.append(title);
      // Where the inset is, on the main map.
      const [x0, y0] = mainView.proj.at(cluster[1][0], cluster[0][1]);
      const [x1, y1] = mainView.proj.at(cluster[0][0], cluster[1][1]);
      mainView.g.append(s('rect', { class: 'locator', x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));
      mainView.locator = { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
      views.push(inset);
    }
    return true;
  }

  function clusterName(b) {
    // The district holding most of the cluster's junctions names the inset.
    const tally = new Map();
    for (const i of known.values()) {
      if (i.district && i.lat >= b[0][0] && i.lat <= b[1][0] && i.lon >= b[0][1] && i.lon <= b[1][1]) tally.set(i.district, (tally.get(i.district) || 0) + 1);
    }
    const names = [...tally.entries()].sort((a, c) => c[1] - a[1]).slice(0, 2).map(([n]) => n);
    return names.join(' · ').toUpperCase();
  }

  // ---------------------------------------------------------------- markers
  function marker(v, kind, key, make) {
    let m = v.markers[kind].get(key);
    if (!m) {
      if (v.markers[kind].size >= MAX_MARKERS) return null;
      m = make();
      v.markers[kind].set(key, m);
    }
    m.seen = true;
    return m;
  }

  function place(m, x, y) {
    attr(m.g, 'transform', `translate(${x.toFixed(1)},${y.toFixed(1)})`);
    if (m.label) {
      attr(m.label, 'x', (x + m.r * 1.6).toFixed(1));
      attr(m.label, 'y', y.toFixed(1));
    }
  }

  function halo(v, key, on, x, y, r, sevName) {
    let c = v.halos.get(key);
    if (!on) {
      if (c) {
        c.remove();
        v.halos.delete(key);
      }
      return;
    }
    if (!c) {
      if (v.halos.size >= MAX_HALOS) return;
      c = s('circle', { class: 'halo', r: r.toFixed(1) });
      v.layers.halos.append(c);
      v.halos.set(key, c);
    }
    attr(c, 'cx', x.toFixed(1));
    attr(c, 'cy', y.toFixed(1));
    sev(c, sevName);
  }

  function junctions() {
    const entries = new Map();
    for (const [id, def] of known) entries.set(id, { id, name: def.name, lat: def.lat, lon: def.lon, v: null });
    for (const { value: v } of replica.get('intersection').values()) {
      if (replica.city && v.city !== replica.city) continue;
      const def = known.get(v.id);
      entries.set(v.id, { id: v.id, name: v.info?.name || def?.name || v.id, lat: v.info?.lat ?? def?.lat, lon: v.info?.lon ?? def?.lon, v });
    }
    return entries;
  }

  function renderJunctions(v, entries, atcs) {
    const r = rem() * 0.85;
    for (const e of entries.values()) {
      if (!Number.isFinite(e.lat) || !Number.isFinite(e.lon)) continue;
      const m = marker(v, 'intersection', e.id, () => {
        const shape = s('path', { class: 'shape' });
        const letter = s('text', { class: 'letter' });
        const g = s('g', { class: 'jn' }, shape, letter);
        v.layers.junctions.append(g);
        const label = s('text', { class: 'jn-label' });
        v.layers.labels.append(label);
        return { g, shape, letter, label, r };
      });
      if (!m) continue;
      const mode = e.v?.state?.mode;
      const offline = !e.v?.state || atcs.staleSources.has(e.id);
      const dark = mode === 'flashing' || mode === 'off';
      let g = gradeOf(e.v?.worst_saturation);
      if (offline) g = { grade: '×', sev: 'stale' };
      else if (dark) g = { grade: '!', sev: 'stale' };
      attr(m.shape, 'd', junctionShape(g.sev, r));
      text(m.letter, g.grade);
      sev(m.g, g.sev);
      attr(m.g, 'data-id', e.id);
      cls(m.g, 'offline', offline || dark);
      const [x, y] = v.proj.at(e.lat, e.lon);
      place(m, x, y);
      const busy = g.sev === 'crit' || g.sev === 'warn' || offline || dark;
      const loc = v.locator;
      const inCluster = !!loc && x >= loc.x && x <= loc.x + loc.w && y >= loc.y && y <= loc.y + loc.h;
      // Labels where they have room: the inset labels its own; the main map labels the rest.
      const showLabel = !inCluster && (labels === 'all' || (labels === 'busy' && busy));
      text(m.label, showLabel ? e.name.replace(/^Simpang\s+/i, '') : '');
      sev(m.label, g.sev);
      const incident = !offline && Number.isFinite(e.v?.worst_saturation) && e.v.worst_saturation > INCIDENT_DS;
      halo(v, `j/${e.id}`, incident, x, y, r * 1.3, 'crit');
    }
  }

  function renderCalls(v, calls) {
    const r = rem() * 0.7;
    for (const [key, c] of calls) {
      const m = marker(v, 'call', key, () => {
        const box = s('rect', { x: -r, y: -r, width: 2 * r, height: 2 * r, rx: r * 0.3, class: 'shape' });
        const digit = s('text', { class: 'letter' });
        const g = s('g', { class: 'call-marker' }, box, digit);
        v.layers.calls.append(g);
        return { g, digit, r };
      });
      if (!m) continue;
      text(m.digit, c.priority || '?');
      sev(m.g, c.priority ? prioritySeverity(c.priority) : 'info');
      attr(m.g, 'data-call', c.call_id);
      const [x, y] = v.proj.at(c.caller.lat, c.caller.lon);
      place(m, x, y);
      halo(v, `c/${key}`, c.priority === 1, x, y, r * 1.5, 'crit');
    }
  }

  function renderUnits(v, units) {
    const r = rem() * 0.75;
    for (const [key, u] of units) {
      const m = marker(v, 'unit', key, () => {
        const tri = s('path', { class: 'shape', d: `M0,${-r * 1.15}L${r},${r * 0.75}L${-r},${r * 0.75}Z` });
        const letter = s('text', { class: 'letter', y: (r * 0.2).toFixed(1) });
        const g = s('g', { class: 'unit-marker' }, tri, letter);
        v.layers.units.append(g);
        return { g, letter, r };
      });
      if (!m) continue;
      text(m.letter, UNIT_LETTER[u.kind] || (u.agency || '?')[0].toUpperCase());
      sev(m.g, UNIT_SEV[u.status] || 'info');
      attr(m.g, 'data-unit', u.unit);
      const [x, y] = v.proj.at(u.lat, u.lon);
      place(m, x, y);
    }
  }

  function sweep(v) {
    for (const [kind, map] of Object.entries(v.markers)) {
      for (const [key, m] of map) {
        if (m.seen) {
          m.seen = false;
          continue;
        }
        m.g.remove();
        if (m.label) m.label.remove();
        map.delete(key);
        halo(v, kind === 'call' ? `c/${key}` : `j/${key}`, false);
      }
    }
  }

  function render({ now }) {
    const atcs = replica.feeds('atcs');
    freshness(f, mergeFeeds(atcs, replica.feeds('calls'), replica.feeds('units')), i18n, now, newestOf(replica, ['intersection', 'call', 'unit']));
    let calls = [];
    for (const [key, { value: c }] of replica.get('call')) {
      if (c.open && c.caller && (!replica.city || c.city === replica.city)) calls.push([key, c]);
    }
    const openCalls = calls.length;
    if (calls.length > MAX_CALLS_DRAWN) {
      calls.sort((a, b) => (a[1].priority || 5) - (b[1].priority || 5) || (receivedAt(b[1]) || 0) - (receivedAt(a[1]) || 0));
      calls = calls.slice(0, MAX_CALLS_DRAWN);
    }
    const units = [];
    let busy = 0;
    for (const [key, { value: u }] of replica.get('unit')) {
      if ((replica.city && u.city !== replica.city) || !Number.isFinite(u.lat) || !Number.isFinite(u.lon)) continue;
      units.push([key, u]);
      if (UNIT_SEV[u.status] === 'busy') busy++;
    }
    const entries = junctions();
    // Without scenario geometry the data decides the extent: refit when a point falls outside.
    let grew = false;
    for (const e of entries.values()) grew = include(e.lat, e.lon) || grew;
    for (const [, c] of calls) grew = include(c.caller.lat, c.caller.lon) || grew;
    for (const [, u] of units) grew = include(u.lat, u.lon) || grew;
    if ((grew || !views.length) && !arrange()) return;
    let incidents = 0;
    for (const v of views) {
      renderJunctions(v, entries, atcs);
      renderCalls(v, calls);
      renderUnits(v, units);
      sweep(v);
    }
    for (const e of entries.values()) if (e.v?.state && !atcs.staleSources.has(e.id) && e.v.worst_saturation > INCIDENT_DS) incidents++;
    for (const { value: c } of replica.get('call').values()) if (c.open && c.priority === 1 && (!replica.city || c.city === replica.city)) incidents++;
    text(counts, `${i18n.t('legend_calls').split(' (')[0]} ${i18n.num(openCalls)} · ${i18n.t('legend_units')} ${i18n.t('unit_busy')} ${i18n.num(busy)}/${i18n.num(units.length)} · ${i18n.t('legend_incident')} ${i18n.num(incidents)}`);
    sev(counts, incidents ? 'crit' : 'none');
  }

  new ResizeObserver(() => {
    const w = Math.round(f.body.clientWidth);
    const hh = Math.round(f.body.clientHeight);
    if (w === size.w && hh === size.h) return;
    size = { w, h: hh };
    views = [];
    for (const k of ['intersection', 'call', 'unit']) invalidate(k);
  }).observe(f.body);

  return { kinds: ['intersection', 'call', 'unit', 'feed'], clock: false, minMs: MIN_RENDER_MS, render };
}

/**
 * Fits bounds `[[south, west], [north, east]]` into a rectangle `{x, y, w, h}`
 * (longitudes shrunk by the cosine of the latitude, so that a kilometre is as
 * long either way): `at(lat, lon) -> [x, y]`, its inverse `from(x, y) ->
 * [lat, lon]` and the fitted extent `box`. Shared with the dispatcher
 * console's recommendation map (which also picks positions with `from`).
 */
export function fit(b, rect) {
  const [[south, west], [north, east]] = b;
  const kx = Math.cos((((south + north) / 2) * Math.PI) / 180);
  const spanX = Math.max((east - west) * kx, 1e-6);
  const spanY = Math.max(north - south, 1e-6);
  const scale = Math.min(rect.w / spanX, rect.h / spanY);
  const w = spanX * scale;
  const hh = spanY * scale;
  const ox = rect.x + (rect.w - w) / 2;
  const oy = rect.y + (rect.h - hh) / 2;
  return {
    at: (lat, lon) => [ox + (lon - west) * kx * scale, oy + (north - lat) * scale],
    from: (x, y) => [north - (y - oy) / scale, west + (x - ox) / (kx * scale)],
    box: { x: ox, y: oy, w, h: hh },
  };
}

/** An SVG path through `[lat, lon]` points under a projection `at` (closed: a polygon). */
export function pathOf(points, at, close = false) {
  return points.map(([la, lo], i) => `${i ? 'L' : 'M'}${at(la, lo).map((x) => x.toFixed(1)).join(',')}`).join('') + (close ? 'Z' : '');
}

/** Minor roads first, so that arterials and the toll road draw on top. */
export function roadsInDrawingOrder(roads) {
  const order = { tol: 3, arteri: 2, kolektor: 1 };
  return [...(roads || [])].sort((a, b) => (order[a.class] || 0) - (order[b.class] || 0));
}

function junctionShape(sevName, r) {
  if (sevName === 'crit') return octagon(r * 1.15);
  if (sevName === 'warn' || sevName === 'watch') return diamond(r * 1.2);
  return `M${-r},0a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0`;
}

function buildLegend(i18n) {
  const item = (cls2, sevName, glyph, label) => h('span', { class: `lg ${cls2}`, 'data-sev': sevName }, h('span', { class: 'glyph' }, glyph), label);
  const grades = ['A', 'B', 'C', 'D', 'E', 'F'].map((g) => h('span', { class: 'grade-badge small', 'data-sev': gradeOf({ A: 0.5, B: 0.65, C: 0.75, D: 0.85, E: 0.95, F: 1.1 }[g]).sev }, g));
  return h(
    'div',
    { class: 'map-legend' },
    h('span', { class: 'lg-grades' }, ...grades, 'DS'),
    item('lg-call', 'crit', '1', i18n.t('legend_calls')),
    item('lg-unit', 'ok', '△', `${i18n.t('legend_units')}: ${i18n.t('unit_status.available').toLowerCase()}`),
    item('lg-unit', 'busy', '▲', i18n.t('unit_busy')),
    item('lg-halo', 'crit', '◎', i18n.t('legend_incident')),
  );
}

/** The bounding box `[[south, west], [north, east]]` of `[lat, lon]` points. */
export function bbox(points) {
  let s0 = 90;
  let w0 = 180;
  let n0 = -90;
  let e0 = -180;
  for (const [la, lo] of points) {
    s0 = Math.min(s0, la);
    n0 = Math.max(n0, la);
    w0 = Math.min(w0, lo);
    e0 = Math.max(e0, lo);
  }
  return [[s0, w0], [n0, e0]];
}

function centroid(poly) {
  let la = 0;
  let lo = 0;
  for (const [a, b] of poly) {
    la += a;
    lo += b;
  }
  return [la / poly.length, lo / poly.length];
}

function octagon(r) {
  const pts = [];
  for (let i = 0; i < 8; i++) {
    const a = (Math.PI / 8) * (2 * i + 1);
    pts.push(`${(r * Math.cos(a)).toFixed(2)},${(r * Math.sin(a)).toFixed(2)}`);
  }
  return `M${pts.join('L')}Z`;
}

function diamond(r) {
  return `M0,${-r}L${r},0L0,${r}L${-r},0Z`;
}
