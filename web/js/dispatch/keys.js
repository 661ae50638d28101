// Keyboard first: ↑/↓ or j/k move the selection in the focused queue,
// Home/End to its ends, Tab (Shift+Tab) or 1-4 switch queue, Enter opens the
// detail (its timeline takes focus; ↑/↓ scroll it), `/` or `:` focus the
// command line, Esc leaves it or the detail. Shift+Enter dispatches the
// selected call's first recommended unit (the command `D`; not a letter, so
// a command typed without `/` first cannot set it off). `g` (ganda) goes to
// the selected call's possible duplicates in the detail: ←/→ between them,
// Enter selects that call (its queue takes the keys), Esc back. `p` picks
// the selected call's position on the map (recommendations.js: ←↑↓→ move a
// crosshair, Enter puts `L <lat> <lon>` on the command line, Esc back). `!`
// gives the alerts strip the keys (alerts/strip.js: ←/→ between its Akui and
// Tunda buttons, Enter presses one, Esc back to the queue). Only a key or
// a click moves focus or the selection: arriving calls never do (the queues
// are listboxes whose rows move under a steady focus).

import { QUEUES, callKey, queueOf } from './model.js';

/**
 * Focuses queue `qi`. Unless `keep`, the selection moves to the queue's
 * last selected row when it is not already one of the queue's calls.
 */
export function focusQueue(con, qi, keep = false) {
  con.focusQueue = qi;
  const list = con.el.queues[qi];
  if (list && document.activeElement !== list) list.focus({ preventScroll: true });
  const rows = con.queues()[QUEUES[qi]];
  if (!keep && rows.length && !(con.sel && rows.some((c) => callKey(c) === con.sel.key))) {
    con.select(rows[Math.min(con.lastIndex[qi], rows.length - 1)]);
  }
  con.invalidate('dispatch');
}

/** Moves the selection by `delta` rows in the focused queue (`to`: 'first' or 'last' instead). */
function move(con, delta, to) {
  const qi = con.focusQueue;
  const rows = con.queues()[QUEUES[qi]];
  const list = con.el.queues[qi];
  if (list && document.activeElement !== list) list.focus({ preventScroll: true });
  if (!rows.length) return;
  const at = con.sel ? rows.findIndex((c) => callKey(c) === con.sel.key) : -1;
  let next;
  if (to === 'first') next = 0;
  else if (to === 'last') next = rows.length - 1;
  else if (at < 0) next = Math.min(con.lastIndex[qi], rows.length - 1);
  else next = Math.max(0, Math.min(rows.length - 1, at + delta));
  con.lastIndex[qi] = next;
  con.select(rows[next]);
  con.reveal = true;
  con.invalidate('dispatch');
}

/** Selects a call from elsewhere on the page (a possible duplicate) and gives its queue the keys. */
export function jumpTo(con, call) {
  con.select(call);
  const qi = QUEUES.indexOf(queueOf(call, con.now()));
  focusQueue(con, qi >= 0 ? qi : con.focusQueue, true);
}

/** The possible duplicates' buttons in the detail. */
function dupButtons(con) {
  return con.el.dups ? [...con.el.dups.querySelectorAll('button.dup')] : [];
}

function isTyping(el) {
  return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}

export function installKeys(con) {
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
    const target = e.target;
    // The command line handles its own keys (Enter, Esc, history): see command.js.
    if (isTyping(target)) return;
    const key = e.key;
    const inDetail = con.el.detail && con.el.detail.contains(target);
    // Between the possible duplicates: ←/→ (and ↑/↓) move, Enter or Space press the button.
    if (target.classList && target.classList.contains('dup') && ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'].includes(key)) {
      const all = dupButtons(con);
      const at = all.indexOf(target);
      const next = key === 'Home' ? 0 : key === 'End' ? all.length - 1 : at + (key === 'ArrowLeft' || key === 'ArrowUp' ? -1 : 1);
      all[Math.max(0, Math.min(all.length - 1, next))]?.focus();
      e.preventDefault();
      return;
    }
    // The opened timeline scrolls with the arrow and page keys.
    if (inDetail && ['ArrowUp', 'ArrowDown', 'PageUp', 'PageDown', 'Home', 'End'].includes(key)) return;
    let handled = true;
    if (key === '/' || key === ':') con.el.input?.focus();
    else if (key === 'ArrowDown' || key === 'j') move(con, 1);
    else if (key === 'ArrowUp' || key === 'k') move(con, -1);
    else if (key === 'Home') move(con, 0, 'first');
    else if (key === 'End') move(con, 0, 'last');
    else if (key === 'Tab') focusQueue(con, (con.focusQueue + (e.shiftKey ? QUEUES.length - 1 : 1)) % QUEUES.length);
    else if (key >= '1' && key <= String(QUEUES.length)) focusQueue(con, Number(key) - 1);
    else if (key === 'Enter' && e.shiftKey && target.tagName !== 'BUTTON') {
      if (con.sel) con.run('D');
      else con.say(con.t('err.no_call'), 'crit');
    } else if (key === 'Enter' && target.tagName !== 'BUTTON' && con.sel) con.el.timeline?.focus({ preventScroll: true });
    else if (key === 'g' || key === 'G') {
      const first = dupButtons(con).find((b) => !b.disabled) || dupButtons(con)[0];
      if (first) first.focus();
      else con.say(con.sel ? con.t('no_dups', { call: con.sel.call_id }) : con.t('err.no_call'), con.sel ? 'info' : 'crit');
    } else if ((key === 'p' || key === 'P') && con.picker) con.picker.start();
    else if (key === '!' && con.alerts) con.alerts.focus();
    else if (key === 'Escape' && inDetail) focusQueue(con, con.focusQueue, true);
    else handled = false;
    if (handled) e.preventDefault();
  });
}
