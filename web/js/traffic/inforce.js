// Commands in force: every leased command still in force in the officer's
// scope, with a live countdown to the end of its lease (the server's clock),
// the soonest to end first, and every command still waiting for the
// controller's answer (including one just published whose entity has not
// come back yet). A command that timed out leaves this list; the junction's
// history keeps it, in red.

import { h, text, keyed } from '../dom.js';
import { makeCommandRow, fillCommandRow } from './cmdrow.js';

export function create(el, { con, replica, i18n, t }) {
  const count = h('span', { class: 'count' });
  const list = h('div', { class: 'cmd-list' });
  const empty = h('div', { class: 'empty' }, t('inforce_empty'));
  el.append(h('header', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, t('inforce_title')), count), list, empty);

  const name = (city, id) => replica.get('intersection').get(`${city}/${id}`)?.value.info?.name || id;

  list.addEventListener('click', (e) => {
    const row = e.target.closest('[data-command]');
    const c = row && con.commands.entities().find((x) => x.command_id === row.dataset.command);
    if (c) con.select(`${c.city}/${c.intersection}`);
  });

  function render({ now }) {
    const live = con.commands.live();
    keyed(list, live, (x) => x.c.command_id, () => makeCommandRow(true), (row, x) => fillCommandRow(row, x.c, { t, i18n, now, name }));
    text(count, i18n.num(live.length));
    empty.hidden = live.length > 0;
  }

  return { kinds: ['command', 'traffic'], clock: true, render };
}
