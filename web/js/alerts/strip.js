// A console's alerts strip (the dispatcher's and the traffic officer's),
// one line across the console under its top bar: the count and how many
// wait for an acknowledgement, the alarm rate against the flood limit, the
// alerts of the console's trade as cards (the unacknowledged first, then by
// priority, then the oldest), each with its priority, its state in words,
// its sentence, since when and the Akui / Tunda buttons (pending until the
// echo), as many as fit; the rest behind a "+N lainnya" switch, the shelved
// ones behind a "Ditunda (N)" switch with Lepas tunda (each opens a list
// under the strip, one at a time); and the sound switch. Keys: `!` (the
// console's keys.js) gives the strip the keys, ←/→ move between its
// buttons and switches, Enter presses one, Esc closes an open list, then
// goes back.

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { alertKey, needsAck } from './model.js';
import { alertText, sinceText } from './text.js';
import { prioChip, fillPrio, stateTag, fillState, actionBox, soundControl, stripKeys } from './ui.js';

/** A card is at least this wide, rem: its sentence must still say what it is about. */
const CARD_MIN_REM = 24;
/** Cards never exceed this, whatever the width (bounded DOM). */
const MAX_CARDS = 8;
/** Alerts listed behind each switch (the rest, the shelved) at most. */
const MAX_LISTED = 30;

export function create(el, { alerts: api, i18n, invalidate }) {
  const { t } = api;
  el.id = 'alert-strip';
  el.dataset.testid = 'alert-strip';
  el.setAttribute('tabindex', '-1');
  el.setAttribute('aria-label', t('strip_title'));
  const count = h('span', { class: 'al-strip-count' });
  const rate = h('span', { class: 'al-rate', 'data-testid': 'alert-rate' });
  const head = h(
    'div',
    { class: 'al-strip-head' },
    h('h2', { class: 'al-strip-title', title: t('key_hint') }, h('kbd', { class: 'al-key' }, '!'), t('strip_title')),
    count,
    rate,
  );
  const cards = h('div', { class: 'al-cards' });
  const empty = h('div', { class: 'al-empty' }, t('none'));
  // The cards' room, whether or not any card is there (its width sets how many fit).
  const room = h('div', { class: 'al-room' }, cards, empty);
  const rest = popList('al-rest');
  const shelf = popList('al-shelved-list');
  const sound = soundControl(api);
  el.append(...[head, room, rest.el, shelf.el, sound && sound.el].filter(Boolean));
  api.strip = el;
  // One list open at a time: they open in the same place.
  for (const [a, b] of [[rest, shelf], [shelf, rest]]) {
    a.el.addEventListener('toggle', () => {
      if (a.el.open) b.el.open = false;
      invalidate('alerts');
    });
  }
  stripKeys(el, () => {
    const open = [rest, shelf].find((x) => x.el.open && x.el.contains(document.activeElement));
    if (!open) return api.leave();
    open.el.open = false;
    open.summary.focus({ preventScroll: true });
  });

  /** A switch that opens a list of cards under the strip. */
  function popList(cls) {
    const label = h('span');
    const summary = h('summary', null, label);
    const list = h('div', { class: 'al-pop-list' });
    const pop = h('div', { class: 'al-pop' }, list);
    return { el: h('details', { class: `al-switch ${cls}` }, summary, pop), summary, label, list };
  }

  // Cards that fit the width.
  let capacity = 3;
  new ResizeObserver(() => {
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    capacity = Math.max(1, Math.min(MAX_CARDS, Math.floor(room.clientWidth / (CARD_MIN_REM * rem))));
    invalidate('alerts');
  }).observe(room);

  function makeCard() {
    const prio = prioChip();
    const state = stateTag();
    const what = h('span', { class: 'al-text' });
    const since = h('span', { class: 'al-since' });
    const box = actionBox(api);
    // The sentence gets the first line; the state in words leads the second.
    const card = h('div', { class: 'al-card' }, h('div', { class: 'al-c1' }, prio, what), h('div', { class: 'al-c2' }, state, since, box.el));
    card._ = { prio, state, what, since, box };
    return card;
  }

  function fillCard(card, a, now, shelved) {
    const e = card._;
    attr(card, 'data-alert-id', a.alert_id);
    attr(card, 'data-state', a.state);
    attr(card, 'data-priority', a.priority);
    attr(card, 'data-ack', shelved ? 'shelved' : needsAck(a) ? 'no' : 'yes');
    fillPrio(e.prio, a, t);
    sev(card, e.prio.dataset.sev || null);
    fillState(e.state, a, api, shelved);
    const sentence = alertText(a, api);
    text(e.what, sentence);
    attr(e.what, 'title', sentence);
    if (shelved) {
      const until = Date.parse(a.shelved_until);
      const line = t('shelved_until', { who: a.shelved_by || '–', time: i18n.time(until) });
      text(e.since, a.reason ? `${line} · ${t('shelved_reason', { reason: a.reason })}` : line);
    } else text(e.since, sinceText(a, now, api, true));
    e.box.fill(a, shelved);
    cls(card, 'shelved', shelved);
  }

  function render({ now }) {
    const v = api.model.view();
    const shown = v.list.slice(0, capacity);
    keyed(cards, shown, alertKey, makeCard, (card, a) => fillCard(card, a, now, false));
    empty.hidden = v.list.length > 0;
    const others = v.list.slice(shown.length);
    rest.el.hidden = others.length === 0;
    if (rest.el.hidden) rest.el.open = false;
    const u = others.filter(needsAck).length;
    text(rest.label, u ? t('more_unack', { n: others.length, u }) : t('more', { n: others.length }));
    attr(rest.el, 'data-count', others.length);
    keyed(rest.list, rest.el.open ? others.slice(0, MAX_LISTED) : [], alertKey, makeCard, (card, a) => fillCard(card, a, now, false));
    text(count, v.list.length ? `${i18n.num(v.list.length)} · ${t('unacked_n', { n: i18n.num(v.unacked) })}` : t('none_short'));
    sev(count, v.unacked ? 'crit' : 'none');
    attr(count, 'title', v.suppressed ? t('suppressed_n', { n: v.suppressed }) : null);
    const r = v.rate;
    text(rate, r.flood ? `${t('flood')} · ${t('rate', { n: r.n, limit: r.limit, min: r.windowMin })}` : t('rate', { n: r.n, limit: r.limit, min: r.windowMin }));
    attr(rate, 'title', t('rate_hint', { limit: r.limit, min: r.windowMin }));
    attr(rate, 'data-flood', r.flood ? 'true' : 'false');
    attr(rate, 'data-count', r.n);
    sev(rate, r.flood ? 'crit' : r.n >= r.limit * 0.7 ? 'warn' : 'none');
    text(shelf.label, t('shelved_n', { n: i18n.num(v.shelved.length) }));
    shelf.el.hidden = v.shelved.length === 0;
    if (shelf.el.hidden) shelf.el.open = false;
    attr(shelf.el, 'data-count', v.shelved.length);
    keyed(shelf.list, shelf.el.open ? v.shelved.slice(0, MAX_LISTED) : [], alertKey, makeCard, (card, a) => fillCard(card, a, now, true));
    attr(el, 'data-unacked', v.unacked);
    if (sound) sound.render();
  }

  return { kinds: ['alert', 'alerts'], clock: true, render };
}
