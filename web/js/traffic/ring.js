// The signal ring of the opened junction: one circle for the cycle, an arc
// per phase (the approaches' green times, in phase order, from the top
// clockwise; the running phase's arc bright), a hand at how far the cycle
// has run (the phase's start plus its elapsed time, moved on by the server's
// clock between two states), and the phase's label in the middle, whether
// the controller numbers its phases (2) or letters them ("B"). A junction
// flashing or off is drawn as such: a blinking amber ring or a dark one,
// with the word in the middle.

import { s, attr, text } from '../dom.js';
import { ringModel } from './model.js';

const C = 60;
const R = 46;

/** A point on the ring at `frac` of the cycle (0 at the top, clockwise). */
function point(frac, r = R) {
  const a = frac * 2 * Math.PI - Math.PI / 2;
  return [C + r * Math.cos(a), C + r * Math.sin(a)];
}

/** The SVG path of the arc from `a` to `b` (fractions of the cycle). */
function arc(a, b) {
  const [x1, y1] = point(a);
  const [x2, y2] = point(Math.min(b, a + 0.9999));
  const large = b - a > 0.5 ? 1 : 0;
  return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${R} ${R} 0 ${large} 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`;
}

/** `{el, render(state, now)}`: the ring's SVG and its update. */
export function createRing(t) {
  const track = s('circle', { class: 'ring-track', cx: C, cy: C, r: R });
  const arcs = s('g', { class: 'ring-arcs' });
  const hand = s('line', { class: 'ring-hand', x1: C, y1: C - R + 9, x2: C, y2: C - R - 5 });
  const label = s('text', { class: 'ring-label', x: C, y: C + 2, 'text-anchor': 'middle', 'dominant-baseline': 'middle' });
  const sub = s('text', { class: 'ring-sub', x: C, y: C + 22, 'text-anchor': 'middle' });
  const title = s('title');
  const el = s('svg', { class: 'ring', viewBox: '0 0 120 120', role: 'img', 'data-ring': 'none' }, title, track, arcs, hand, label, sub);
  let shape = '';

  function render(st, now, i18n) {
    const m = ringModel(st, now);
    attr(el, 'data-ring', m.kind);
    attr(el, 'data-phase', m.label);
    if (m.kind !== 'run') {
      text(label, m.kind === 'flashing' ? t('ring_flashing') : m.kind === 'off' ? t('ring_off') : '–');
      text(sub, '');
      attr(hand, 'visibility', 'hidden');
      if (shape !== m.kind) {
        arcs.replaceChildren();
        shape = m.kind;
      }
      text(title, label.textContent);
      return;
    }
    text(label, m.label);
    text(sub, t('ring_cycle', { s: i18n.num(st.cycle_s) }));
    // The arcs change only with the greens or the phase; the hand every render.
    const sig = m.segments.map((g) => `${g.start.toFixed(4)}-${g.end.toFixed(4)}-${g.current ? 1 : 0}`).join('|');
    if (sig !== shape) {
      shape = sig;
      arcs.replaceChildren(...m.segments.map((g) => s('path', { class: g.current ? 'ring-arc current' : 'ring-arc', d: arc(g.start, g.end) })));
    }
    // The hand is a stroke across the ring (the label keeps the middle).
    const [x1, y1] = point(m.hand, R - 9);
    const [x2, y2] = point(m.hand, R + 5);
    attr(hand, 'visibility', null);
    attr(hand, 'x1', x1.toFixed(2));
    attr(hand, 'y1', y1.toFixed(2));
    attr(hand, 'x2', x2.toFixed(2));
    attr(hand, 'y2', y2.toFixed(2));
    text(title, t('ring_label', { phase: m.label, cycle: i18n.num(st.cycle_s), elapsed: i18n.num(Math.floor(m.elapsed)) }));
  }

  return { el, render };
}
