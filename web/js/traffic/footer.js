// The line under the console: the last message (a command sent, the
// server's refusal in its own words, a key that had nothing to act on) and
// a reminder of the keys. The message is a live region, so a screen reader
// hears it too.

import { h, text, attr, sev } from '../dom.js';

export function create(el, { con, t }) {
  const message = h('div', { class: 'message', role: 'status', 'aria-live': 'polite' });
  el.append(message, h('div', { class: 'hint' }, t('hint')));

  function render() {
    const m = con.message;
    text(message, m ? m.text : '');
    // A long message (a corridor's skipped junctions) is cut on the line: the whole of it is its title.
    attr(message, 'title', m ? m.text : null);
    sev(message, m ? m.sev : null);
  }

  return { kinds: ['traffic'], clock: false, render };
}
