// Emergency units: the field units on their way to a call (dispatched or en
// route), the most urgent first (the call's priority, then the longest in
// that status): unit id, kind, agency, call, priority, status and how long
// ago it changed, and the green corridor it already has ("koridor aktif: 3
// simpang", from the `priority` commands in force for it; those just asked
// for count as waiting). `g` (or a click on a row) gives a unit a green
// corridor (forms.js). Each row is `tr[data-unit]`, with `data-corridor`
// (the junctions holding a green for it), `data-priority` and
// `data-unit-status`. A traffic officer never sees the call's destination:
// the server plans the route.

import { h, text, attr, sev, cls, keyed } from '../dom.js';

const STATUS_SEV = { dispatched: 'warn', en_route: 'info' };
const PRIORITY_SEV = { 1: 'crit', 2: 'warn', 3: 'watch', 4: 'none' };
const COLUMNS = ['unit', 'call', 'status'];

export function create(el, { con, i18n, t }) {
  const count = h('span', { class: 'count' });
  const tr = h('tr', null, ...COLUMNS.map((c) => h('th', { scope: 'col', class: `u-${c}` }, t(`u_col.${c}`))));
  const tbody = h('tbody');
  const table = h('table', { class: 'unit-table', 'aria-labelledby': 'units-title' }, h('thead', null, tr), tbody);
  const scroll = h('div', { class: 'unit-scroll' }, table);
  const empty = h('div', { class: 'empty' }, t('units_empty'));
  const key = h('span', { class: 'panel-key' }, h('kbd', null, 'g'), ` ${t('units_key')}`);
  el.append(h('header', { class: 'panel-head' }, h('h2', { class: 'panel-title', id: 'units-title' }, t('units_title')), count, key), scroll, empty);

  tbody.addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-unit]');
    if (row && con.openCorridor) con.openCorridor(row.dataset.unit);
  });

  function makeRow() {
    const id = h('span', { class: 'u-id' });
    const what = h('span', { class: 'u-what' });
    const call = h('span', { class: 'u-callid' });
    const prio = h('span', { class: 'u-prio' });
    const status = h('span', { class: 'u-st' });
    const age = h('span', { class: 'u-age' });
    const corridor = h('span', { class: 'u-corridor' });
    const row = h(
      'tr',
      null,
      h('td', { class: 'u-unit' }, id, what),
      h('td', { class: 'u-call' }, h('span', { class: 'u-line' }, prio, call), corridor),
      h('td', { class: 'u-status' }, status, age),
    );
    row._ = { id, what, call, prio, status, age, corridor };
    return row;
  }

  function fill(row, r) {
    const e = row._;
    attr(row, 'data-unit', r.unit);
    attr(row, 'data-unit-status', r.status);
    attr(row, 'data-priority', r.priority);
    attr(row, 'data-corridor', r.active);
    cls(row, 'has-corridor', r.active > 0);
    sev(row, r.priority != null ? PRIORITY_SEV[r.priority] || 'none' : 'none');
    text(e.id, r.unit);
    text(e.what, [r.kind, r.agency].filter(Boolean).join(' · '));
    text(e.call, r.call_id || '–');
    text(e.prio, r.priority != null ? `P${r.priority}` : '');
    sev(e.prio, r.priority != null ? PRIORITY_SEV[r.priority] || 'none' : null);
    text(e.status, t(`unit_status.${r.status}`));
    sev(e.status, STATUS_SEV[r.status] || 'none');
    text(e.age, r.ageS != null ? i18n.timer(r.ageS) : '–');
    attr(e.age, 'title', Number.isFinite(r.sinceMs) ? t('unit_since', { time: i18n.time(r.sinceMs) }) : null);
    const n = (x) => ({ n: i18n.num(x) });
    let c = '';
    if (r.active) c = t(r.active === 1 ? 'corridor_active_1' : 'corridor_active', n(r.active));
    if (r.pending) c = c ? `${c} · ${t('corridor_pending', n(r.pending))}` : t(r.pending === 1 ? 'corridor_waiting_1' : 'corridor_waiting', n(r.pending));
    text(e.corridor, c);
    sev(e.corridor, r.active ? 'ok' : r.pending ? 'info' : null);
  }

  function render() {
    const rows = con.units();
    keyed(tbody, rows, (r) => r.unit, makeRow, fill);
    text(count, i18n.num(rows.length));
    empty.hidden = rows.length > 0;
    scroll.hidden = rows.length === 0;
  }

  return { kinds: ['unit', 'command', 'traffic'], clock: true, render };
}
