// Layout: reads `layouts.json` and places the panels. A layout is a canvas
// (width x height CSS px, split into screens) with panels on a grid; this
// browser shows one screen of it (`?screen=N`) or, without `screen=`, all of
// it. The shown part is scaled to fit the window, so nothing is ever cut off
// or scrolled, whatever the display's real resolution.

/** Fetches the layout file and picks the layout named in the URL (or by window size). */
export async function loadLayout(name) {
  const res = await fetch('/layouts.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error(`layouts.json: HTTP ${res.status}`);
  const all = await res.json();
  const chosen = name && all[name] ? name : window.innerWidth >= 3000 ? '4k' : 'hd';
  if (name && !all[name]) console.warn(`kendali: no layout "${name}" in layouts.json; using ${chosen}`);
  return { name: chosen, ...all[chosen] };
}

/**
 * The part of the canvas this browser shows: the whole canvas, or screen
 * `screen` (1-based, row by row) of a multi-screen layout.
 */
export function viewport(layout, screen) {
  const [cols, rows] = layout.screens || [1, 1];
  const sw = layout.width / cols;
  const sh = layout.height / rows;
  const n = Number(screen);
  if (Number.isInteger(n) && n >= 1 && n <= cols * rows && cols * rows > 1) {
    const i = n - 1;
    return { x: (i % cols) * sw, y: Math.floor(i / cols) * sh, w: sw, h: sh, screen: n, screens: cols * rows };
  }
  return { x: 0, y: 0, w: layout.width, h: layout.height, screen: null, screens: cols * rows };
}

/** Pixel rectangle of a panel on the canvas (gap included). */
function panelRect(layout, at) {
  const [gc, gr] = layout.grid;
  const cw = layout.width / gc;
  const rh = layout.height / gr;
  const gap = (layout.gap_rem ?? 0.5) * layout.font_px;
  const [c, r, w, h] = at;
  return { x: c * cw + gap / 2, y: r * rh + gap / 2, w: w * cw - gap, h: h * rh - gap };
}

/**
 * Builds the stage: the wall element sized to the viewport, scaled to the
 * window, and one positioned container per panel that overlaps it. Returns
 * `[{type, options, el}]` for the panels to mount.
 */
export function mountLayout(wall, layout, vp) {
  document.documentElement.style.fontSize = `${layout.font_px}px`;
  wall.style.width = `${vp.w}px`;
  wall.style.height = `${vp.h}px`;
  wall.dataset.layout = layout.name;
  if (vp.screen) wall.dataset.screen = String(vp.screen);
  const fit = () => {
    const k = Math.min(window.innerWidth / vp.w, window.innerHeight / vp.h);
    wall.style.transform = `scale(${k})`;
    wall.style.left = `${Math.max(0, (window.innerWidth - vp.w * k) / 2)}px`;
    wall.style.top = `${Math.max(0, (window.innerHeight - vp.h * k) / 2)}px`;
  };
  fit();
  window.addEventListener('resize', fit);
  const mounted = [];
  for (const p of layout.panels) {
    const r = panelRect(layout, p.at);
    const overlaps = r.x < vp.x + vp.w && r.x + r.w > vp.x && r.y < vp.y + vp.h && r.y + r.h > vp.y;
    if (!overlaps) continue;
    const el = document.createElement('section');
    el.className = `panel panel-${p.type}`;
    el.dataset.panel = p.type;
    el.style.left = `${r.x - vp.x}px`;
    el.style.top = `${r.y - vp.y}px`;
    el.style.width = `${r.w}px`;
    el.style.height = `${r.h}px`;
    wall.append(el);
    mounted.push({ type: p.type, options: p.options || {}, el, rect: r });
  }
  return mounted;
}
