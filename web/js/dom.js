// DOM helpers shared by the panels: element builders and writes that touch
// the DOM only when a value really changed (a wall re-renders many times a
// second; unchanged text must cost nothing).

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Builds an HTML element: h('div', {class: 'x', 'data-k': 1}, child, 'text'). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children) if (c != null) el.append(c);
  return el;
}

/** Builds an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  for (const c of children) if (c != null) el.append(c);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) if (v != null && v !== false) el.setAttribute(k, v === true ? '' : v);
}

/** Sets textContent if it changed. */
export function text(el, value) {
  const v = value == null ? '' : String(value);
  if (el.__text !== v) {
    el.__text = v;
    el.textContent = v;
  }
}

/** Sets an attribute if it changed (null removes it). */
export function attr(el, name, value) {
  const key = '__a_' + name;
  const v = value == null ? null : String(value);
  if (el[key] === v) return;
  el[key] = v;
  if (v == null) el.removeAttribute(name);
  else el.setAttribute(name, v);
}

/** Sets `data-sev` (the colour class) if it changed. */
export function sev(el, value) {
  attr(el, 'data-sev', value);
}

/** Toggles a class if needed. */
export function cls(el, name, on) {
  if (el.classList.contains(name) !== !!on) el.classList.toggle(name, !!on);
}

/**
 * Keeps `container`'s children in step with `items`: one child per key, in
 * order, created by `make(item)` and refreshed by `update(el, item)`. Nodes
 * whose key disappeared are removed; nothing else is recreated.
 */
export function keyed(container, items, keyOf, make, update) {
  const old = container.__keyed || new Map();
  const next = new Map();
  let cursor = container.firstChild;
  for (const item of items) {
    const k = keyOf(item);
    let el = old.get(k);
    if (!el) el = make(item);
    next.set(k, el);
    update(el, item);
    if (el !== cursor) container.insertBefore(el, cursor);
    else cursor = cursor.nextSibling;
  }
  for (const [k, el] of old) if (!next.has(k)) el.remove();
  container.__keyed = next;
}
