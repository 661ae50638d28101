// Keyboard first. On the board: j/k or ↓/↑ move the highlight (Home/End to
// the ends), Enter opens the highlighted junction in the detail and gives
// the keys to its approaches. In the detail: j/k or ↓/↑ move between the
// approaches, Esc goes back to the board. Anywhere: `e` extends the
// selected approach's green, `a` approves the top suggestion at once, `p`
// sets the plan, `m` the mode, `n` plays an announcement, `o` toggles
// automatic mode (forms.js: Enter sends, Esc cancels), `g` gives an
// emergency unit a green corridor (not tied to a junction), `s` cycles the
// board's order, `f` focuses the district filter (Esc or Enter back to the
// board), `!` gives the alerts strip the keys (alerts/strip.js: ←/→
// between its Akui and Tunda buttons, Enter presses one, Esc back to the
// board), `?` shows the keys. A command key pressed on the board acts on the
// highlighted junction (opening it first). Only a key or a click moves focus
// or the selection: arriving data never do.

import { rankedSuggestions } from './model.js';

function isTyping(el) {
  return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}

/** Gives the board the keys. */
export function focusBoard(con) {
  con.el.board?.focus({ preventScroll: true });
}

/** Opens the highlighted junction, if any; true when one is open afterwards. */
function openHighlighted(con) {
  const rows = con.rows();
  const at = con.highlightIndex(rows);
  if (at >= 0 && rows[at].key !== con.selected) con.select(rows[at].key);
  return !!con.selected;
}

/** Approves the opened junction's top suggestion: the POST goes at once. */
export function approveTop(con) {
  const t = con.t;
  const j = con.target();
  if (!j) return con.say(t('err_no_junction'), 'crit');
  const top = rankedSuggestions(j.row ? j.row.suggestions : [])[0];
  if (!top) return con.say(t('err_no_sugg', { name: j.name }), 'crit');
  const reason = t('sugg_reason', { ds: Number(top.saturation).toFixed(2), q: Math.round(top.queue_m) });
  return con.command('extend_green', { approach: top.approach, seconds: top.seconds, reason });
}

export function installKeys(con, forms) {
  const t = con.t;
  /** The command keys: each acts on the opened junction. */
  const ACTIONS = {
    e: (j) => (con.approach ? forms.extendGreen(j, con.approach) : con.say(t('err_no_approach'), 'crit')),
    a: () => approveTop(con),
    p: (j) => forms.setPlan(j),
    m: (j) => forms.setMode(j),
    n: (j) => forms.announce(j),
    o: (j) => forms.toggleAuto(j),
  };

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
    const key = e.key;
    const target = e.target;
    // An open form handles its own keys (forms.js); Esc reaching here (focus
    // left the form) still closes it, and the help also closes with ?.
    if (con.overlay) {
      if (key === 'Escape' || (con.overlay.kind === 'help' && key === '?')) {
        e.preventDefault();
        forms.close();
      }
      return;
    }
    if (target === con.el.filter) {
      if (key === 'Escape' || key === 'Enter') {
        e.preventDefault();
        focusBoard(con);
      }
      return;
    }
    if (isTyping(target)) return;
    const inDetail = !!(con.el.detail && con.el.detail.contains(target));
    const lower = key.length === 1 ? key.toLowerCase() : key;
    let handled = true;
    if (key === '?') forms.help();
    else if (lower === 'j' || key === 'ArrowDown' || lower === 'k' || key === 'ArrowUp') {
      const delta = lower === 'j' || key === 'ArrowDown' ? 1 : -1;
      if (inDetail) {
        con.el.approaches?.focus({ preventScroll: true });
        con.moveApproach(delta);
      } else {
        focusBoard(con);
        con.moveHighlight(delta);
      }
    } else if ((key === 'Home' || key === 'End') && !inDetail) {
      focusBoard(con);
      con.moveHighlight(0, key === 'Home' ? 'first' : 'last');
    } else if (key === 'Enter' && !inDetail && target.tagName !== 'BUTTON') {
      if (openHighlighted(con)) con.el.approaches?.focus({ preventScroll: true });
    } else if (key === 'Escape' && inDetail) focusBoard(con);
    else if (lower === 's') con.nextSort();
    else if (lower === 'f') con.el.filter?.focus();
    else if (lower === 'g') forms.corridor();
    else if (key === '!' && con.alerts) con.alerts.focus();
    else if (ACTIONS[lower]) {
      // On the board, a command is for the highlighted junction: it opens first.
      if (!inDetail) openHighlighted(con);
      const j = con.target();
      if (j) ACTIONS[lower](j);
      else con.say(t('err_no_junction'), 'crit');
    } else handled = false;
    if (handled) e.preventDefault();
  });
}
