// The alerts' pieces of screen, the same on the wall and in the consoles:
// the priority chip ("P1", with its word where there is room), the state tag
// (BELUM DIAKUI filled and flashing, DIAKUI outlined and steady: the words
// and the fill tell them apart without colour), the action buttons with
// their pending and refused states, the shelve form, the sound switch and
// the arrow keys between a strip's buttons. Everything is written with
// text nodes and attributes (dom.js), never as HTML.

import { h, s, text, attr, sev, cls } from '../dom.js';
import { prioritySeverity } from '../targets.js';
import { alertKey, needsAck } from './model.js';
import { SHELVE_DEFAULT_MIN, SHELVE_MAX_MIN } from './actions.js';
import { alertText, stateText } from './text.js';
import { replayHref } from '../shell/replay.js';

/** The priority chip. */
export function prioChip() {
  return h('span', { class: 'al-prio' });
}

/** Fills a priority chip: "P1" (`long`: "P1 KRITIS"), coloured by priority. */
export function fillPrio(el, a, t, long = false) {
  const p = a.priority;
  const known = Number.isInteger(p) && p >= 1 && p <= 4;
  const chip = known ? t('prio_chip', { p }) : 'P?';
  text(el, long && known ? `${chip} ${t(`priority.${p}`)}` : chip);
  sev(el, known ? prioritySeverity(p) : 'none');
  attr(el, 'data-priority', known ? p : null);
}

/** The state tag. */
export function stateTag() {
  return h('span', { class: 'al-state' });
}

/** Fills a state tag: the words, `data-ack` (no: filled and flashing; yes: outlined), the priority's colour. */
export function fillState(el, a, ctx, shelved = false) {
  text(el, stateText(a, ctx, shelved));
  attr(el, 'data-ack', shelved ? 'shelved' : needsAck(a) ? 'no' : 'yes');
  attr(el, 'data-state', a.state);
  sev(el, Number.isInteger(a.priority) ? prioritySeverity(a.priority) : 'none');
}

const ACTIONS = ['ack', 'shelve', 'unshelve'];

/**
 * The action buttons of one alert, for a person who may act (`api.mayAct`;
 * otherwise only the pending/refused line): `{el, fill(a, shelved)}`. Ack
 * shows while the alert waits for an acknowledgement, Shelve while it is
 * not shelved, Unshelve while it is. A pending action turns its button into
 * "mengakui…" with a spinner and the others inert, until the echo.
 */
export function actionBox(api) {
  const { t } = api;
  const status = h('span', { class: 'al-status', role: 'status' });
  const buttons = {};
  if (api.mayAct) {
    for (const action of ACTIONS) {
      buttons[action] = h('button', { type: 'button', class: `al-btn al-${action}`, 'data-alert-action': action, 'data-testid': `alert-${action}`, title: t(`btn_hint.${action}`) });
    }
  }
  // "Show me the room when this happened": the wall replayed from a minute before the raise.
  const replay = h('a', { class: 'al-replay', 'data-testid': 'alert-replay', target: '_blank', rel: 'noopener', title: t('replay_link') }, '⟲');
  const el = h('div', { class: 'al-actions' }, ...ACTIONS.map((a) => buttons[a]), replay, status);
  el.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-alert-action]');
    const a = el.__alert;
    if (!b || !a || b.getAttribute('aria-disabled') === 'true') return;
    e.stopPropagation();
    const action = b.dataset.alertAction;
    if (action === 'ack') api.actions.ack(a);
    else if (action === 'unshelve') api.actions.unshelve(a);
    else if (action === 'shelve') openShelve(api, a, b);
  });

  function fill(a, shelved) {
    el.__alert = a;
    attr(replay, 'href', replayHref(Date.parse(a.raised_at), { city: a.city }));
    const { pending, error } = api.actions.of(alertKey(a));
    const focused = el.contains(document.activeElement) ? document.activeElement : null;
    for (const action of ACTIONS) {
      const b = buttons[action];
      if (!b) continue;
      const shown = action === 'ack' ? !shelved && needsAck(a) : action === 'shelve' ? !shelved : shelved;
      const mine = !!pending && pending.action === action;
      if (b.hidden === shown) b.hidden = !shown;
      attr(b, 'data-alert-id', a.alert_id);
      text(b, mine ? t(`pending.${action}`) : t(`btn.${action}`));
      cls(b, 'al-busy', mine);
      attr(b, 'aria-busy', mine ? 'true' : null);
      // Inert rather than disabled: a disabled button would drop the keyboard's focus.
      attr(b, 'aria-disabled', pending ? 'true' : null);
    }
    if (pending) {
      // The button says what is pending ("mengakui…"); without buttons the line says it.
      const what = buttons[pending.action] ? '' : `${t(`pending.${pending.action}`)} `;
      text(status, what + (pending.state === 'unconfirmed' ? t('unconfirmed') : t('waiting')));
      sev(status, pending.state === 'unconfirmed' ? 'warn' : 'info');
    } else if (error) {
      text(status, error.text);
      sev(status, 'crit');
    } else {
      text(status, '');
      sev(status, null);
    }
    attr(status, 'title', error && !pending ? error.text : null);
    attr(el, 'data-pending', pending ? pending.action : null);
    // A button that went away with the keyboard's focus (Ack, once acknowledged) hands it to the next one.
    if (focused && (focused.hidden || !el.contains(focused))) {
      const next = ACTIONS.map((x) => buttons[x]).find((b) => b && !b.hidden);
      if (next) next.focus({ preventScroll: true });
    }
  }

  return { el, fill };
}

/** The open shelve form's layer, if any (one at a time on a page). */
let openLayer = null;

/** Closes the shelve form; focus goes back where it was. */
export function closeShelve() {
  if (!openLayer) return;
  const { layer, returnTo } = openLayer;
  openLayer = null;
  layer.remove();
  if (returnTo && returnTo.isConnected && !returnTo.hidden) returnTo.focus({ preventScroll: true });
}

/**
 * The shelve form over the page for alert `a`: the reason (required) and
 * the minutes (1..SHELVE_MAX_MIN). Enter sends, Esc cancels. It closes on
 * the server's 202 (the alert then shows "menunda…" until the echo) and
 * stays open with the server's message when refused.
 */
export function openShelve(api, a, returnTo = document.activeElement) {
  closeShelve();
  const { t } = api;
  const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'alert-shelve-reason' });
  const minutes = h('input', { name: 'minutes', type: 'number', min: 1, max: SHELVE_MAX_MIN, step: 1, value: String(SHELVE_DEFAULT_MIN), inputmode: 'numeric', 'data-testid': 'alert-shelve-minutes' });
  const error = h('p', { class: 'al-form-error', role: 'alert' });
  const send = h('button', { type: 'submit', class: 'al-btn al-send', 'data-testid': 'alert-shelve-send' }, t('send'));
  const cancel = h('button', { type: 'button', class: 'al-btn al-quiet', 'data-testid': 'alert-shelve-cancel' }, t('cancel'));
  const form = h(
    'form',
    { id: 'alert-shelve-form', class: 'al-dialog', 'data-alert-id': a.alert_id, role: 'dialog', 'aria-modal': 'true', 'aria-label': t('shelve_title'), novalidate: true },
    h('h3', null, t('shelve_title')),
    h('p', { class: 'al-form-what' }, alertText(a, api)),
    h('label', null, h('span', null, t('l_reason')), reason),
    h('label', null, h('span', null, t('l_minutes', { max: SHELVE_MAX_MIN })), minutes),
    error,
    h('div', { class: 'al-form-buttons' }, send, cancel),
  );
  const layer = h('div', { class: 'al-layer' }, form);
  // A click beside the form closes it, like Esc.
  layer.addEventListener('mousedown', (e) => {
    if (e.target === layer) closeShelve();
  });
  // The form keeps its keys: the console's own keys never see them.
  form.addEventListener('keydown', (e) => {
    e.stopPropagation();
    if (e.key === 'Escape') {
      e.preventDefault();
      closeShelve();
    }
  });
  cancel.addEventListener('click', () => closeShelve());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (send.disabled) return;
    const why = reason.value.trim();
    const m = Number(minutes.value);
    if (!why) {
      text(error, t('err_reason'));
      reason.focus();
      return;
    }
    if (!(Number.isInteger(m) && m >= 1 && m <= SHELVE_MAX_MIN)) {
      text(error, t('err_minutes', { max: SHELVE_MAX_MIN }));
      minutes.focus();
      return;
    }
    send.disabled = true;
    text(error, t('sending'));
    const res = await api.actions.shelve(a, why, m);
    send.disabled = false;
    if (res.ok) {
      if (openLayer && openLayer.layer === layer) closeShelve();
      return;
    }
    if (!res.login) text(error, res.status ? res.error : t('no_answer', { error: res.error }));
  });
  document.body.append(layer);
  openLayer = { layer, returnTo: returnTo && returnTo !== document.body ? returnTo : null };
  reason.focus();
  return form;
}

/** A speaker, with sound waves (shown when on) and a cross (shown when off), drawn in SVG (no font needed). */
function speakerIcon() {
  return s(
    'svg',
    { class: 'al-speaker', viewBox: '0 0 24 24', 'aria-hidden': 'true' },
    s('path', { class: 'al-speaker-body', d: 'M3 9h4l5-4v14l-5-4H3z' }),
    s('path', { class: 'al-speaker-waves', d: 'M15.5 8.5a5 5 0 0 1 0 7M18.5 5.5a9 9 0 0 1 0 13' }),
    s('path', { class: 'al-speaker-cross', d: 'M16 9l6 6M22 9l-6 6' }),
  );
}

/**
 * The sound switch (once per page: it carries the ids `sound-state` and
 * `sound-toggle`): an indicator always on show, "SUARA MATI" with a crossed
 * speaker or "SUARA AKTIF" with waves, and the button that turns it on
 * ("Aktifkan suara") or off. `{el, render()}`, or null when the page has one.
 */
export function soundControl(api) {
  if (api.soundShown) return null;
  api.soundShown = true;
  const { t } = api;
  const word = h('span', { class: 'al-sound-word' });
  const state = h('span', { id: 'sound-state', 'data-testid': 'sound-state', class: 'al-sound-state', role: 'status', title: t('sound_hint') }, speakerIcon(), word);
  const button = h('button', { id: 'sound-toggle', 'data-testid': 'sound-toggle', type: 'button', class: 'al-btn al-sound-btn', title: t('sound_hint') });
  // The AudioContext must be made inside the click itself (browsers' autoplay rule).
  button.addEventListener('click', (e) => {
    e.stopPropagation();
    api.chime.toggle();
  });
  const el = h('div', { class: 'al-sound' }, state, button);

  function render() {
    const st = api.chime.state();
    attr(el, 'data-sound', st);
    attr(state, 'data-sound', st);
    text(word, st === 'on' ? t('sound_on') : st === 'off' ? t('sound_off') : t('sound_none'));
    attr(state, 'title', st === 'unsupported' ? t('sound_none_hint') : t('sound_hint'));
    text(button, st === 'on' ? t('sound_mute') : t('sound_enable'));
    attr(button, 'aria-pressed', st === 'on' ? 'true' : 'false');
    if (button.hidden !== (st === 'unsupported')) button.hidden = st === 'unsupported';
  }

  render();
  return { el, render };
}

function isTyping(el) {
  return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}

/** The buttons (and summaries) a person can reach in `root` now, in order. */
export function reachable(root) {
  return [...root.querySelectorAll('button, summary')].filter((b) => !b.hidden && b.getClientRects().length > 0);
}

/**
 * Keys inside an alerts strip: ←/→ (and ↑/↓, Home/End) move between its
 * buttons, Tab moves on natively (not the console's queue switch), Esc
 * calls `leave()`. Enter and Space press the focused button natively.
 */
export function stripKeys(root, leave) {
  root.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || e.isComposing || isTyping(e.target)) return;
    const key = e.key;
    if (key === 'Tab') {
      e.stopPropagation();
      return;
    }
    if (key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      leave();
      return;
    }
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    if (!(key in moves) && key !== 'Home' && key !== 'End') return;
    const all = reachable(root);
    if (!all.length) return;
    const at = all.indexOf(e.target);
    const next = key === 'Home' ? 0 : key === 'End' ? all.length - 1 : at < 0 ? 0 : Math.max(0, Math.min(all.length - 1, at + moves[key]));
    all[next].focus({ preventScroll: true });
    e.preventDefault();
    e.stopPropagation();
  });
}
