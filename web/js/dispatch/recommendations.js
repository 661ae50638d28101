// The selected call's recommended units (recommend.js holds the answer):
// up to three free units of the call's agency, quickest first, each with its
// rank key (D1..D3; the first also Shift+Enter), unit, kind, ETA (m:ss),
// distance (km), the delay at the signalised junctions on the way ("+45 dtk
// di 3 simpang"), its status, and GARIS LURUS when the server had no roads
// to route on. When the call changed after the answer was made the list
// says USANG (and `D` sends nothing until the new answer is in); a unit that
// is no longer free says TIDAK SIAGA. Under the list a small SVG map in the
// wall map's projection (panels/map.js) with the scenario's districts and
// roads, the caller (a square with the priority), the units (triangles with
// their rank), the first unit's route bold and the others thin. A click on a
// row puts `D<n>` on the command line (Enter sends it).
//
// The map also picks the caller's position for the selected open call (shown
// then even before the call has one: the city, no caller, and a hint). A click
// on it, or `p` (pick mode: a crosshair that ←↑↓→ move by 50 m, ⇧ by 250 m;
// Enter takes it, Esc leaves), turns the point back into lat/lon with the
// map's own projection (`fit(...).from`) and puts `L <lat> <lon> ` (6
// decimals) on the command line, with the focus there: the dispatcher adds an
// address if need be and sends it with Enter. Nothing is sent from the map. A
// marker shows the picked point while the command line holds it (or the locate
// is pending); selecting another call drops an unsent pick. The SVG's
// `data-pick` says what a click does: `off`, `on` (picks) or `keys` (pick mode).

import { h, s, text, attr, sev, cls, keyed } from '../dom.js';
import { prioritySeverity } from '../targets.js';
import { fit, bbox, pathOf, roadsInDrawingOrder } from '../panels/map.js';
import { focusQueue } from './keys.js';

/** Unit status colours, as in the units list (always with the status in words). */
const STATUS_SEV = { available: 'ok', dispatched: 'warn', en_route: 'info', on_scene: 'busy', returning: 'watch', out_of_service: 'stale' };
const FREE = new Set(['available', 'returning']);
/** The map shows at least this much around the caller, degrees of latitude (about 1.3 km). */
const MIN_SPAN_DEG = 0.012;
/** Margin around what the map shows, as a share of its extent. */
const MAP_MARGIN = 0.12;
/** Pick mode: one arrow key moves the crosshair this far, metres (with Shift, PICK_SHIFT times as far). */
const PICK_STEP_M = 50;
const PICK_SHIFT = 5;
/** Metres in a degree of latitude. */
const M_PER_DEG = 111_320;

/** A call with a known position. */
const located = (c) => !!(c && c.caller && Number.isFinite(c.caller.lat) && Number.isFinite(c.caller.lon));
/** True while the command line still holds the picked `L <lat> <lon>` (an address may follow). */
function holds(value, line) {
  const v = String(value || '').trimStart();
  const base = line.trimEnd();
  return v === base || v.startsWith(`${base} `);
}

export function create(el, { con, i18n, t, scenario, city, invalidate, me }) {
  const may = (me && me.may) || {};
  const state = h('div', { class: 'rec-state' });
  const staleTag = h('span', { class: 'sevtag', 'data-sev': 'warn' });
  el.append(h('header', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, t('rec_title')), staleTag), state);
  const list = h('div', { class: 'rec-list', role: 'list' });
  const note = h('div', { class: 'rec-note', role: 'status' });
  const basisNote = h('div', { class: 'rec-basis', 'data-sev': 'warn', title: t('rec_straight_hint') }, t('rec_straight'));
  const svg = s('svg', { class: 'rec-map', role: 'img', 'aria-label': t('rec_map'), 'data-pick': 'off', tabindex: '-1' });
  const pickHint = h('div', { class: 'rec-pickhint', role: 'status', 'aria-live': 'polite', hidden: true });
  const mapBox = h('div', { class: 'rec-mapbox' }, svg, pickHint);
  const legend = h('div', { class: 'rec-legend' }, t('rec_legend'));
  el.append(list, basisNote, note, mapBox, legend);

  list.addEventListener('click', (e) => {
    const row = e.target.closest('.rrow');
    const input = con.el.input;
    if (!row || !input) return;
    input.value = `D${row.dataset.rank}`;
    input.focus();
  });

  function makeRow() {
    const key = h('kbd', { class: 'rkey' });
    const key2 = h('kbd', { class: 'rkey rkey-first' }, '⇧Enter');
    const id = h('span', { class: 'uid' });
    const kind = h('span', { class: 'rkind' });
    const eta = h('span', { class: 'reta', title: t('rec_eta_hint') });
    const dist = h('span', { class: 'rdist' });
    const delay = h('span', { class: 'rdelay' });
    const status = h('span', { class: 'ustatus' });
    const basis = h('span', { class: 'sevtag rbasis', 'data-sev': 'warn', title: t('rec_straight_hint') });
    const row = h(
      'div',
      { class: 'rrow', role: 'listitem' },
      h('div', { class: 'r1' }, key, id, kind, h('span', { class: 'spacer' }), key2, eta, dist),
      h('div', { class: 'r2' }, status, basis, delay),
    );
    row._ = { key, key2, id, kind, eta, dist, delay, status, basis };
    return row;
  }

  function updateRow(row, { u, rank }) {
    const e = row._;
    attr(row, 'data-rank', rank);
    attr(row, 'data-unit', u.unit);
    attr(row, 'title', t('rec_pick_hint', { cmd: `D${rank}` }));
    cls(row, 'first', rank === 1);
    text(e.key, `D${rank}`);
    e.key2.hidden = rank !== 1;
    text(e.id, u.unit.toUpperCase());
    text(e.kind, u.kind ? t(`kind.${u.kind}`) : u.agency || '');
    text(e.eta, i18n.timer(u.eta_s));
    text(e.dist, `${i18n.num((u.distance_m || 0) / 1000, 1)} km`);
    const straight = u.basis === 'straight_line';
    const n = u.junctions || 0;
    const secs = i18n.num(u.junction_delay_s || 0, 0);
    // Without roads there are no junctions to count: no delay line then.
    text(e.delay, n === 0 ? (straight ? '' : t('rec_delay_none')) : n === 1 ? t('rec_delay_1', { s: secs }) : t('rec_delay', { s: secs, n: i18n.num(n) }));
    // The live status when the replica has it (the answer's is from when it was made).
    const live = con.rec.liveUnit(u.unit);
    const status = live ? live.status : u.status;
    const isTaken = !FREE.has(status);
    const word = i18n.t(`unit_status.${status}`);
    text(e.status, isTaken ? `${t('rec_taken')}: ${word}` : word);
    attr(e.status, 'title', u.last_call && status === 'returning' ? t('rec_from_call', { call: u.last_call }) : null);
    sev(e.status, isTaken ? 'crit' : STATUS_SEV[status] || 'none');
    text(e.basis, straight ? t('rec_straight_short') : '');
    cls(row, 'taken', isTaken);
  }

  // ------------------------------------------------------------------ map
  let size = { w: 0, h: 0 };
  /** What the map shows now: a key of its inputs, and the answer drawn. */
  let drawn = null;
  let drawnAnswer = null;

  function cityBounds() {
    if (scenario?.districts?.length) return bbox(scenario.districts.flatMap((d) => d.polygon));
    return scenario?.bounds || null;
  }

  /** What the map frames: the caller, every route, at least MIN_SPAN_DEG, plus a margin. */
  function frameOf(dest, units) {
    const pts = [];
    if (dest) pts.push([dest.lat, dest.lon]);
    for (const u of units) for (const p of u.route || []) pts.push(p);
    if (!pts.length) return cityBounds();
    let [[so, we], [no, ea]] = bbox(pts);
    const kx = Math.cos((((so + no) / 2) * Math.PI) / 180);
    const grow = (lo, hi, min) => {
      const mid = (lo + hi) / 2;
      const half = Math.max(hi - lo, min) / 2 * (1 + MAP_MARGIN * 2);
      return [mid - half, mid + half];
    };
    [so, no] = grow(so, no, MIN_SPAN_DEG);
    [we, ea] = grow(we, ea, MIN_SPAN_DEG / kx);
    return [[so, we], [no, ea]];
  }

  function drawMap(call, answer) {
    const dest = answer ? answer.destination : located(call) ? call.caller : null;
    const units = answer ? answer.units : [];
    const b = frameOf(dest, units);
    svg.replaceChildren();
    view = null;
    pickDrawn = null;
    if (!b || !size.w || !size.h) return;
    attr(svg, 'viewBox', `0 0 ${size.w} ${size.h}`);
    const pad = 6;
    const proj = fit(b, { x: pad, y: pad, w: size.w - 2 * pad, h: size.h - 2 * pad });
    const at = proj.at;
    const g = (c) => s('g', { class: c });
    const layers = { districts: g('rm-districts'), roads: g('rm-roads'), routes: g('rm-routes'), units: g('rm-units'), dest: g('rm-dest') };
    svg.append(...Object.values(layers));
    // The scenario's geometry is its own city's.
    const sameCity = scenario && (!scenario.city || !call || scenario.city === call.city || scenario.city === city);
    if (sameCity) {
      for (const d of scenario.districts || []) layers.districts.append(s('path', { class: 'rm-district', d: pathOf(d.polygon, at, true) }));
      for (const r of roadsInDrawingOrder(scenario.roads)) layers.roads.append(s('path', { class: `rm-road rm-road-${r.class || 'lokal'}`, d: pathOf(r.polyline, at) }));
    }
    // The others' routes first, thin; the first unit's on top, bold over a dark casing.
    for (let i = units.length - 1; i >= 0; i--) {
      const u = units[i];
      if (!u.route || u.route.length < 2) continue;
      const d = pathOf(u.route, at);
      const straight = u.basis === 'straight_line' ? ' straight' : '';
      if (i === 0) layers.routes.append(s('path', { class: 'rm-route-casing', d }));
      layers.routes.append(s('path', { class: `rm-route${i === 0 ? ' first' : ' other'}${straight}`, d, 'data-rank': i + 1 }));
    }
    const r = 8;
    units.forEach((u, i) => {
      const p = u.route && u.route[0];
      if (!p) return;
      const [x, y] = at(p[0], p[1]);
      const live = con.rec.liveUnit(u.unit);
      const marker = s(
        'g',
        { class: `rm-unit${i === 0 ? ' first' : ''}`, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, 'data-unit': u.unit, 'data-sev': live && !FREE.has(live.status) ? 'stale' : i === 0 ? 'info' : 'ok' },
        s('path', { class: 'shape', d: `M0,${-r * 1.15}L${r},${r * 0.75}L${-r},${r * 0.75}Z` }),
        s('text', { class: 'letter', y: (r * 0.22).toFixed(1) }, String(i + 1)),
      );
      const label = s('text', { class: 'rm-label', x: (x + r * 1.4).toFixed(1), y: y.toFixed(1) }, u.unit.toUpperCase());
      layers.units.append(marker, label);
    });
    if (dest) {
      const [x, y] = at(dest.lat, dest.lon);
      const p = call && call.priority;
      layers.dest.append(
        s(
          'g',
          { class: 'rm-caller', transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, 'data-sev': p ? prioritySeverity(p) : 'info' },
          s('rect', { class: 'shape', x: -r, y: -r, width: 2 * r, height: 2 * r, rx: 2 }),
          s('text', { class: 'letter', y: 1 }, p ? String(p) : '?'),
        ),
      );
    }
    // A click picks a point only on a map of the call's own place: its city's, or framed on its position.
    view = { proj, w: size.w, h: size.h, clickable: !!(sameCity || dest) };
    svg.append(pickLayer);
  }

  // ------------------------------------------------------------------ picking the caller's position
  /** The map as drawn: `{proj, w, h, clickable}`, or null. */
  let view = null;
  /** The position picked for the selected call: `{key, call_id, lat, lon, line}` (the line put on the command line). */
  let picked = null;
  /** Pick mode: the crosshair's `{lat, lon}`, or null. */
  let cross = null;
  const pickLayer = s('g', { class: 'rm-pick' });
  let pickDrawn = null;

  /** The selected call when a position may be picked for it (open, and the session may dispatch), else null. */
  function pickCall() {
    const call = con.selectedCall();
    return may.dispatch && call && call.open ? call : null;
  }

  /** The point under the map's pixel `(x, y)`, `[lat, lon]`. */
  const pointAt = (x, y) => view.proj.from(x, y);

  /** Puts `L <lat> <lon> ` on the command line for the selected call: the line, or null when no position may be picked. */
  function pick(lat, lon) {
    const call = pickCall();
    const input = con.el.input;
    if (!call || !input || !Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
    const la = lat.toFixed(6);
    const lo = lon.toFixed(6);
    const line = `L ${la} ${lo} `;
    picked = { key: con.sel.key, call_id: call.call_id, lat: Number(la), lon: Number(lo), line };
    cross = null;
    input.value = line;
    input.focus();
    input.setSelectionRange(line.length, line.length);
    con.say(t('pick_placed', { call: call.call_id }), 'info');
    syncPick();
    return line;
  }

  function startPick() {
    const call = pickCall();
    if (!call) {
      con.say(!con.sel ? t('err.no_call') : !may.dispatch ? t('err.rec_not_allowed') : t('pick_closed', { call: con.sel.call_id }), 'crit');
      return false;
    }
    if (!view || !view.clickable) {
      con.say(t('pick_no_map'), 'crit');
      return false;
    }
    let from;
    if (picked && picked.key === con.sel.key) from = [picked.lat, picked.lon];
    else if (located(call)) from = [call.caller.lat, call.caller.lon];
    else from = pointAt(view.w / 2, view.h / 2);
    cross = { lat: from[0], lon: from[1] };
    svg.focus({ preventScroll: true });
    syncPick();
    return true;
  }

  function endPick() {
    if (!cross) return;
    cross = null;
    syncPick();
  }

  /** Moves the crosshair `north` and `east` metres, kept on the map. */
  function nudge(north, east) {
    const [n, w] = pointAt(0, 0);
    const [so, e] = pointAt(view.w, view.h);
    const lat = cross.lat + north / M_PER_DEG;
    const lon = cross.lon + east / (M_PER_DEG * Math.cos((cross.lat * Math.PI) / 180));
    cross = { lat: Math.min(n, Math.max(so, lat)), lon: Math.min(e, Math.max(w, lon)) };
    syncPick();
  }

  svg.addEventListener('click', (e) => {
    if (!view || !view.clickable || !pickCall()) return;
    const ctm = svg.getScreenCTM();
    if (!ctm) return;
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
    const [lat, lon] = pointAt(p.x, p.y);
    pick(lat, lon);
  });

  // Pick mode has the keys while the map has the focus (the queues' keys wait).
  svg.addEventListener('keydown', (e) => {
    if (!cross || e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
    const step = PICK_STEP_M * (e.shiftKey ? PICK_SHIFT : 1);
    const dir = { ArrowUp: [1, 0], ArrowDown: [-1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
    if (!view) endPick();
    else if (dir) nudge(dir[0] * step, dir[1] * step);
    else if (e.key === 'Enter') {
      if (!pick(cross.lat, cross.lon)) endPick();
    } else if (e.key === 'Escape' || e.key === 'p' || e.key === 'P') {
      endPick();
      focusQueue(con, con.focusQueue, true);
    } else return;
    e.preventDefault();
    e.stopPropagation();
  });
  svg.addEventListener('blur', endPick);
  document.addEventListener('input', (e) => {
    if (picked && e.target === con.el.input) syncPick();
  });

  /** Keeps the pick's marker, crosshair, hint and `data-pick` in step with the selection and the command line. */
  function syncPick() {
    const call = pickCall();
    const input = con.el.input;
    // The marker stays while the command line holds the pick, or once sent (Enter empties the line) while its locate is on its way.
    if (picked) {
      const same = call && con.sel.key === picked.key;
      const line = input ? input.value : '';
      const sent = same && !line.trim() && con.actions.forCall(picked.call_id).some((a) => a.action === 'locate');
      if (!same || !(holds(line, picked.line) || sent)) picked = null;
    }
    if (cross && !(call && view && view.clickable)) cross = null;
    const mode = cross ? 'keys' : call && view && view.clickable ? 'on' : 'off';
    attr(svg, 'data-pick', mode);
    attr(mapBox, 'title', mode === 'on' ? t('pick_title') : null);
    cls(svg, 'pickable', mode !== 'off');
    cls(svg, 'picking', !!cross);
    let msg = '';
    if (cross) msg = t('pick_keys', { lat: cross.lat.toFixed(6), lon: cross.lon.toFixed(6) });
    else if (mode === 'on' && !located(call) && !picked) msg = t('pick_hint');
    text(pickHint, msg);
    pickHint.hidden = !msg;
    drawPick();
  }

  function drawPick() {
    const key = view ? JSON.stringify([view.w, view.h, picked && [picked.lat, picked.lon], cross && [cross.lat, cross.lon]]) : '';
    if (pickDrawn === key) return;
    pickDrawn = key;
    pickLayer.replaceChildren();
    if (!view) return;
    const at = view.proj.at;
    const xy = (lat, lon) => at(lat, lon).map((v) => v.toFixed(1));
    if (picked) {
      const [x, y] = xy(picked.lat, picked.lon);
      pickLayer.append(
        s(
          'g',
          { class: 'rm-picked', transform: `translate(${x},${y})`, 'data-lat': picked.lat.toFixed(6), 'data-lon': picked.lon.toFixed(6) },
          s('circle', { class: 'ring', r: 9 }),
          s('path', { class: 'tick', d: 'M-14,0H-5M5,0H14M0,-14V-5M0,5V14' }),
          s('circle', { class: 'dot', r: 2 }),
        ),
      );
    }
    if (cross) {
      const [x, y] = xy(cross.lat, cross.lon);
      pickLayer.append(
        s(
          'g',
          { class: 'rm-cross', 'data-lat': cross.lat.toFixed(6), 'data-lon': cross.lon.toFixed(6) },
          s('path', { class: 'hair', d: `M0,${y}H${view.w}M${x},0V${view.h}` }),
          s('circle', { class: 'ring', cx: x, cy: y, r: 7 }),
        ),
      );
    }
  }

  /** For the keys (`p`), the console's selection and the tests (`pickAt`). */
  con.picker = {
    start: startPick,
    /** What a click at `(lat, lon)` does: the line put on the command line, or null. */
    at: (lat, lon) => pick(Number(lat), Number(lon)),
    get active() {
      return !!cross;
    },
    /** Another call was selected: an unsent pick was for the one before, and goes. */
    selectionChanged() {
      cross = null;
      if (picked && (!con.sel || con.sel.key !== picked.key)) {
        const input = con.el.input;
        if (input && holds(input.value, picked.line)) {
          input.value = '';
          con.say(t('pick_dropped', { call: picked.call_id }), 'info');
        }
        picked = null;
      }
      invalidate('recommend');
    },
  };

  new ResizeObserver(() => {
    const w = Math.round(mapBox.clientWidth);
    const hh = Math.round(mapBox.clientHeight);
    if (w === size.w && hh === size.h) return;
    size = { w, h: hh };
    drawn = null;
    invalidate('recommend');
  }).observe(mapBox);

  // ------------------------------------------------------------------ render
  function render() {
    const st = con.rec.state;
    const call = con.selectedCall();
    const answer = st && !st.reason ? st.answer : null;
    const current = con.rec.current();
    const rows = answer ? answer.units.map((u, i) => ({ u, rank: i + 1 })) : [];
    keyed(list, rows, (r) => r.u.unit, makeRow, updateRow);
    cls(list, 'stale', !!answer && !current);
    basisNote.hidden = !rows.some((r) => r.u.basis === 'straight_line');

    let msg = '';
    let msgSev = null;
    if (!con.sel) msg = t('rec_none_selected');
    else if (!st) msg = '';
    else if (st.reason) msg = t(`rec_${st.reason}`);
    else if (st.error && (st.status === 409 || !answer)) {
      msg = st.status === 409 ? t('rec_no_position') : t('rec_failed', { error: st.error });
      msgSev = 'crit';
    } else if (!answer) msg = st.loading || !st.error ? t('rec_loading') : '';
    else if (!answer.units.length) {
      msg = t('rec_empty', { agency: answer.agency || t('rec_any_agency') });
      msgSev = 'warn';
    }
    text(note, msg);
    sev(note, msgSev);
    note.hidden = !msg;

    text(staleTag, answer && !current ? t('rec_stale') : '');
    attr(staleTag, 'title', answer && !current ? t('rec_stale_hint') : null);
    const bits = [];
    if (answer) bits.push(t('rec_age', { agency: answer.agency || t('rec_any_agency'), age: i18n.age((Date.now() - st.at) / 1000) }));
    if (st && st.loading && answer) bits.push(t('rec_loading'));
    text(state, bits.join(' · '));

    // The map changes with the answer, the caller's position or the panel's size, not with the clock.
    const dest = answer ? null : call && call.caller ? `${call.caller.lat},${call.caller.lon}` : null;
    const key = [size.w, size.h, con.sel ? con.sel.key : '', dest, call ? call.priority : '', rows.map((r) => `${r.u.unit}:${con.rec.liveUnit(r.u.unit)?.status || ''}`).join(',')].join('|');
    if (drawn !== key || drawnAnswer !== answer) {
      drawn = key;
      drawnAnswer = answer;
      drawMap(call, answer);
    }
    syncPick();
  }

  return { kinds: ['recommend', 'dispatch', 'call', 'unit'], clock: true, render };
}
