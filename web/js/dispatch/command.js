// The command line: where the dispatcher types (`/` or `:` to get here, Esc
// to leave, Enter to run, ↑/↓ for earlier lines; a `/` or `:` typed at the
// start of the line is ignored, as in the queues; Shift+Enter on an empty
// line dispatches the first recommended unit, as `D` does), the message beside it (the
// server's error on a refused action, in red with its words), every action
// still pending (amber and NOT CONFIRMED past 15 s), the ones just confirmed,
// and the help line listing the commands.

import { h, text, sev, keyed } from '../dom.js';
import { pendingView } from './actions.js';
import { focusQueue } from './keys.js';

export function create(el, { con, t }) {
  const input = h('input', {
    id: 'cmd',
    class: 'cmd-input',
    type: 'text',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    placeholder: t('cmd_placeholder'),
    'aria-describedby': 'cmd-help cmd-msg',
  });
  const label = h('label', { for: 'cmd', class: 'prompt' }, t('cmd_label'));
  const msg = h('div', { id: 'cmd-msg', class: 'cmd-msg', role: 'status', 'aria-live': 'polite' });
  const chips = h('div', { class: 'cmd-pending', 'aria-live': 'polite' });
  const help = h('div', { id: 'cmd-help', class: 'cmd-help' }, t('help'));
  el.append(h('div', { class: 'cmd-row' }, label, input, msg), chips, help);
  con.el.input = input;

  let back = 0;
  input.addEventListener('keydown', (e) => {
    const atStart = input.selectionStart === input.selectionEnd && !input.value.slice(0, input.selectionStart).trim();
    if ((e.key === '/' || e.key === ':') && atStart) {
      // The key that opens the command line, pressed again in it: already here.
      e.preventDefault();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      const line = input.value;
      if (!line.trim() && e.shiftKey && con.sel) {
        con.run('D');
        return;
      }
      if (!line.trim()) return;
      input.value = '';
      back = 0;
      con.run(line).then((r) => {
        // A line that did not parse comes back to be corrected.
        if (!r.action_id && !input.value) input.value = line;
      });
    } else if (e.key === 'Escape') {
      e.preventDefault();
      focusQueue(con, con.focusQueue, true);
    } else if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      e.preventDefault();
      const hist = con.history;
      back = Math.max(0, Math.min(hist.length, back + (e.key === 'ArrowUp' ? 1 : -1)));
      input.value = back ? hist[hist.length - back] : '';
    }
  });

  function render() {
    const m = con.message;
    text(msg, m ? m.text : '');
    sev(msg, m ? m.sev : null);
    const items = [
      ...[...con.actions.items.values()].map((p) => ({ key: p.action_id, call: p.call_id, ...pendingView(t, p) })),
      ...con.actions.recent().map((d, i) => ({ key: `done-${d.at}-${i}`, text: t('done', { call: d.call_id, what: t(`act_done.${d.action}`) }), sev: 'ok' })),
    ];
    keyed(
      chips,
      items,
      (x) => x.key,
      () => h('span', { class: 'pchip' }),
      (chip, x) => {
        text(chip, x.call ? `${x.call} · ${x.text}` : x.text);
        sev(chip, x.sev);
      },
    );
  }

  return { kinds: ['pending', 'dispatch'], clock: false, render };
}
