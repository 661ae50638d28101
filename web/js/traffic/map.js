// A small map of the junctions on the board, drawn as SVG from their
// positions alone (no tiles: the room fetches nothing from outside). Each
// junction is a dot coloured by its level of service like its board row
// (grey when out of touch); the highlighted and the opened junction are
// ringed (two marker rings over the dots, so the dots never reorder). The box fits every junction in scope, so filtering a district
// does not move the others. A click on a dot opens that junction.

import { h, s, attr, sev, cls, keyed, text } from '../dom.js';

const W = 400;
const H = 260;
const PAD = 14;

export function create(el, { con, t }) {
  const dots = s('g', { class: 'dots' });
  const hiRing = s('circle', { class: 'ring-hi', r: 9, visibility: 'hidden' });
  const openRing = s('circle', { class: 'ring-open', r: 12, visibility: 'hidden' });
  const svg = s('svg', { class: 'jmap', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'xMidYMid meet', role: 'img', 'aria-label': t('map_title') }, s('rect', { class: 'jmap-bg', width: W, height: H }), dots, hiRing, openRing);
  const none = h('div', { class: 'empty', hidden: true }, t('map_none'));
  el.append(h('header', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, t('map_title'))), svg, none);

  svg.addEventListener('click', (e) => {
    const dot = e.target.closest('[data-junction]');
    if (!dot) return;
    con.select(dot.getAttribute('data-junction'));
    con.el.board?.focus({ preventScroll: true });
  });

  /** The projection fitting `rows` into the box (equirectangular, longitude shrunk by the latitude's cosine). */
  function projection(rows) {
    let minLat = Infinity, maxLat = -Infinity, minLon = Infinity, maxLon = -Infinity;
    for (const r of rows) {
      if (!Number.isFinite(r.lat) || !Number.isFinite(r.lon)) continue;
      minLat = Math.min(minLat, r.lat);
      maxLat = Math.max(maxLat, r.lat);
      minLon = Math.min(minLon, r.lon);
      maxLon = Math.max(maxLon, r.lon);
    }
    if (!Number.isFinite(minLat)) return null;
    const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
    const spanX = Math.max((maxLon - minLon) * k, 1e-6);
    const spanY = Math.max(maxLat - minLat, 1e-6);
    const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
    const ox = (W - spanX * scale) / 2;
    const oy = (H - spanY * scale) / 2;
    return (lat, lon) => [ox + (lon - minLon) * k * scale, oy + (maxLat - lat) * scale];
  }

  function makeDot() {
    const title = s('title');
    const c = s('circle', { class: 'jdot', r: 5 }, title);
    c._ = { title };
    return c;
  }

  function fill(c, { r, x, y }) {
    attr(c, 'cx', x.toFixed(1));
    attr(c, 'cy', y.toFixed(1));
    attr(c, 'data-junction', r.key);
    sev(c, r.sev);
    cls(c, 'open', r.key === con.selected);
    text(c._.title, `${r.name} · DS ${r.ds == null ? '–' : r.ds.toFixed(2)} · ${r.grade}`);
  }

  /** Places a marker ring on the dot of `key` (hidden when it has none). */
  function mark(ring, key, at) {
    const p = key ? at.get(key) : null;
    attr(ring, 'visibility', p ? null : 'hidden');
    if (p) {
      attr(ring, 'cx', p.x.toFixed(1));
      attr(ring, 'cy', p.y.toFixed(1));
    }
  }

  function render() {
    const { rows, scoped } = con.view();
    const project = projection(scoped);
    none.hidden = !!project || !rows.length;
    // Dots in the replica's steady order (not the board's, which re-sorts every second): nothing moves in the DOM.
    const onBoard = new Set(rows.map((r) => r.key));
    const items = [];
    const at = new Map();
    if (project) {
      for (const r of scoped) {
        if (!onBoard.has(r.key) || !Number.isFinite(r.lat) || !Number.isFinite(r.lon)) continue;
        const [x, y] = project(r.lat, r.lon);
        const it = { r, x, y };
        items.push(it);
        at.set(r.key, it);
      }
    }
    keyed(dots, items, (it) => it.r.key, makeDot, fill);
    const hi = con.highlightIndex(rows);
    mark(hiRing, hi >= 0 ? rows[hi].key : null, at);
    mark(openRing, con.selected, at);
  }

  return { kinds: ['intersection', 'feed', 'traffic'], clock: false, minMs: 500, render };
}
