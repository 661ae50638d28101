// The units list: every field unit with its status, the call it works and
// the time in that status (from the call's unit stage when the unit is on
// one, else from the first status message that showed it). A unit whose
// stage has not moved past its limit (TARGETS.unitStale, from the server's
// configuration; by default dispatched 2 min, en route 15 min, on scene 1 h)
// is highlighted and says LAMA / STALE. A click on a unit puts its id on the
// command line.

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { unitsOnCalls } from './model.js';
import { unitStaleLimit } from './targets.js';

/** The colour word of each status (always shown with the status in words). */
const STATUS_SEV = { available: 'ok', dispatched: 'warn', en_route: 'info', on_scene: 'busy', returning: 'watch', out_of_service: 'stale' };

export function create(el, { con, replica, i18n, t, unitClock, city }) {
  const count = h('span', { class: 'count' });
  const list = h('div', { class: 'unit-list' });
  const empty = h('div', { class: 'empty', hidden: true }, t('units_empty'));
  el.append(h('header', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, t('units_title')), count), list, empty);

  list.addEventListener('click', (e) => {
    const row = e.target.closest('.urow');
    const input = con.el.input;
    if (!row || !input) return;
    // Onto the line being typed, or a new dispatch.
    input.value = `${input.value.trim() ? input.value.replace(/\s*$/, ' ') : 'D '}${row.dataset.unit} `;
    input.focus();
  });

  function makeRow() {
    const id = h('span', { class: 'uid' });
    const status = h('span', { class: 'ustatus' });
    const age = h('span', { class: 'uage' });
    const kind = h('span', { class: 'ukind' });
    const call = h('span', { class: 'ucall' });
    const stale = h('span', { class: 'sevtag', 'data-sev': 'warn' });
    const row = h('div', { class: 'urow' }, h('div', { class: 'r1' }, id, status, h('span', { class: 'spacer' }), stale, age), h('div', { class: 'r2' }, kind, call));
    row._ = { id, status, age, kind, call, stale };
    return row;
  }

  function updateRow(row, { value: u, call_id, ageS, stale }) {
    const e = row._;
    attr(row, 'data-unit', u.unit);
    text(e.id, u.unit.toUpperCase());
    text(e.status, i18n.t(`unit_status.${u.status}`));
    sev(e.status, STATUS_SEV[u.status] || 'none');
    text(e.age, i18n.timer(ageS));
    text(e.kind, [u.kind, u.agency].filter(Boolean).join(' · '));
    text(e.call, call_id || '');
    cls(row, 'stale-unit', stale);
    cls(row, 'on-selected', !!(con.sel && call_id === con.sel.call_id));
    text(e.stale, stale ? t('unit_stale') : '');
    attr(e.stale, 'title', stale ? t('unit_stale_hint', { limit: i18n.timer(unitStaleLimit(u.status)) }) : null);
  }

  function render({ now }) {
    const rows = unitClock.rows(replica, city, unitsOnCalls(replica, city), now);
    keyed(list, rows, (r) => r.key, makeRow, updateRow);
    text(count, i18n.num(rows.length));
    empty.hidden = rows.length > 0;
  }

  return { kinds: ['unit', 'call', 'dispatch'], clock: true, render };
}
