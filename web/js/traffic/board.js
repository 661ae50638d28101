// The intersection board: every junction in the officer's scope (and the
// district filter) as a table row: name, district, worst DS (2 decimals),
// its level of service (model.js: A–F; the row is coloured by it), mode,
// plan, the conditions as badges with since when ("macet sejak 08:12") and
// the automatic-mode marker. A junction out of touch (comm_loss, or its
// feed stale) is greyed with "tidak ada data sejak HH:MM". Headers sort
// (DS, name, district; `s` cycles them) and a select filters by district
// (`f` focuses it). The table is a grid whose highlighted row moves with
// j/k under a steady focus: rows are keyed by junction, so arrivals and
// re-sorts never move the highlight or the focus. Long boards show a
// window of MAX_ROWS rows around the highlight.

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { SORTS, COND_SEV, MODE_SEV } from './model.js';

/** Rows drawn at most (a window around the highlight; the keys reach every junction). */
const MAX_ROWS = 300;
/** Condition badges drawn per row at most. */
const MAX_BADGES = 4;

const COLUMNS = ['name', 'district', 'ds', 'los', 'mode', 'plan', 'conditions', 'auto'];

/** A DOM id for a junction key (ids may hold any character). */
export function rowId(key) {
  return `jrow-${key.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
}

export function create(el, { con, i18n, t }) {
  const count = h('span', { class: 'count' });
  const sortWord = h('span', { class: 'sort-word' });
  const filter = h('select', { class: 'district-filter', name: 'district', 'aria-label': t('filter_label') });
  filter.append(h('option', { value: '' }, t('filter_all')));
  filter.addEventListener('change', () => con.setDistrict(filter.value));
  con.el.filter = filter;
  const head = h(
    'header',
    { class: 'panel-head' },
    h('h2', { class: 'panel-title', id: 'board-title' }, t('board_title')),
    count,
    sortWord,
    h('label', { class: 'filter' }, h('kbd', null, 'f'), filter),
  );
  const heads = new Map();
  const tr = h('tr');
  for (const c of COLUMNS) {
    const label = t(`col.${c}`);
    const sortable = SORTS.includes(c);
    const th = h('th', { scope: 'col', class: `c-${c}`, 'data-col': c }, sortable ? h('button', { type: 'button', class: 'sort', tabindex: '-1' }, label) : label);
    if (sortable) th.firstChild.addEventListener('click', () => con.setSort(c));
    heads.set(c, th);
    tr.append(th);
  }
  const tbody = h('tbody');
  const table = h('table', { class: 'board-table', role: 'grid', tabindex: '0', 'data-zone': 'board', 'aria-labelledby': 'board-title' }, h('thead', null, tr), tbody);
  const scroll = h('div', { class: 'board-scroll' }, table);
  const empty = h('div', { class: 'empty', hidden: true }, t('board_empty'));
  const more = h('div', { class: 'more', hidden: true });
  el.append(head, scroll, empty, more);
  con.el.board = table;

  tbody.addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-junction]');
    if (!row) return;
    con.select(row.dataset.junction);
    table.focus({ preventScroll: true });
  });
  tbody.addEventListener('dblclick', (e) => {
    if (e.target.closest('tr[data-junction]')) con.el.approaches?.focus({ preventScroll: true });
  });

  let districtsShown = '';
  let winStart = 0;

  function syncDistricts() {
    const list = con.districts();
    const sig = list.join('\u0000');
    if (sig === districtsShown) return;
    districtsShown = sig;
    while (filter.options.length > 1) filter.remove(1);
    for (const d of list) filter.append(h('option', { value: d }, d));
    filter.value = con.district;
  }

  function makeRow() {
    const name = h('span', { class: 'j-name' });
    const note = h('span', { class: 'j-note' });
    const district = h('td', { class: 'c-district' });
    const ds = h('td', { class: 'c-ds' });
    const badge = h('span', { class: 'los-badge' });
    const mode = h('span', { class: 'mode' });
    const plan = h('td', { class: 'c-plan' });
    const conds = h('div', { class: 'conds' });
    const auto = h('span', { class: 'auto-mark' });
    const row = h(
      'tr',
      { role: 'row' },
      h('td', { class: 'c-name' }, name, note),
      district,
      ds,
      h('td', { class: 'c-los' }, badge),
      h('td', { class: 'c-mode' }, mode),
      plan,
      h('td', { class: 'c-conditions' }, conds),
      h('td', { class: 'c-auto' }, auto),
    );
    row._ = { name, note, district, ds, badge, mode, plan, conds, auto };
    return row;
  }

  function condBadge() {
    const what = h('span', { class: 'cond-what' });
    const ap = h('span', { class: 'cond-ap' });
    const b = h('span', { class: 'cond' }, what, ap);
    b._ = { what, ap };
    return b;
  }

  function fillBadge(b, c) {
    if (c.more) {
      text(b._.what, i18n.t('more', { n: c.more }));
      text(b._.ap, '');
      sev(b, 'none');
      attr(b, 'data-condition', null);
      return;
    }
    const time = i18n.time(Date.parse(c.since));
    text(b._.what, t('cond_since', { what: t(`cond.${c.kind}`), time }));
    text(b._.ap, c.approach ? ` · ${c.approach}` : '');
    attr(b, 'data-condition', c.kind);
    sev(b, COND_SEV[c.kind] || 'watch');
  }

  function updateRow(row, { r, highlighted }) {
    const e = row._;
    attr(row, 'id', rowId(r.key));
    attr(row, 'data-junction', r.key);
    attr(row, 'data-los', r.grade);
    sev(row, r.sev);
    attr(row, 'aria-selected', highlighted ? 'true' : 'false');
    cls(row, 'highlight', highlighted);
    cls(row, 'open', r.key === con.selected);
    cls(row, 'stale', r.stale);
    cls(row, 'nodata', r.noData && !r.stale);
    text(e.name, r.name);
    const note = r.stale ? (Number.isFinite(r.staleSince) ? t('stale', { time: i18n.time(r.staleSince) }) : t('stale_never')) : r.noData ? t('stale_never') : '';
    text(e.note, note);
    text(e.district, r.district || t('no_district'));
    cls(e.district, 'unknown', !r.district);
    text(e.ds, r.ds == null ? '–' : i18n.num(r.ds, 2));
    text(e.badge, r.grade);
    sev(e.badge, r.stale ? 'stale' : r.sev);
    text(e.mode, r.mode ? t(`mode.${r.mode}`) : '–');
    sev(e.mode, r.mode ? MODE_SEV[r.mode] || 'none' : 'none');
    attr(e.mode, 'data-mode', r.mode);
    text(e.plan, r.plan ?? '–');
    const list = r.conditions.length > MAX_BADGES ? [...r.conditions.slice(0, MAX_BADGES - 1), { more: r.conditions.length - MAX_BADGES + 1 }] : r.conditions;
    keyed(e.conds, list, (c) => (c.more ? 'more' : `${c.kind}/${c.approach || ''}`), condBadge, fillBadge);
    text(e.auto, r.auto ? t('auto_on') : '');
    attr(e.auto, 'title', r.auto ? t('auto_hint', { who: r.auto.enabled_by, time: i18n.time(Date.parse(r.auto.since)), used: r.auto.used_s, limit: r.auto.limit_s }) : null);
    attr(row, 'data-auto', r.auto ? 'on' : null);
  }

  function render() {
    syncDistricts();
    const rows = con.rows();
    const hi = con.highlightIndex(rows);
    if (rows.length <= MAX_ROWS) winStart = 0;
    else {
      if (hi < winStart || hi >= winStart + MAX_ROWS) winStart = hi - Math.floor(MAX_ROWS / 2);
      winStart = Math.max(0, Math.min(rows.length - MAX_ROWS, winStart));
    }
    const shown = rows.slice(winStart, winStart + MAX_ROWS).map((r, i) => ({ r, highlighted: winStart + i === hi }));
    keyed(tbody, shown, (x) => x.r.key, makeRow, updateRow);
    text(count, i18n.num(rows.length));
    text(sortWord, t(`sort.${con.sort}`));
    for (const [c, th] of heads) attr(th, 'aria-sort', c === con.sort ? (c === 'ds' ? 'descending' : 'ascending') : null);
    if (filter.value !== con.district) filter.value = con.district;
    empty.hidden = rows.length > 0;
    more.hidden = rows.length <= MAX_ROWS;
    if (!more.hidden) text(more, t('board_window', { from: winStart + 1, to: winStart + shown.length, n: rows.length }));
    const hiRow = hi >= 0 ? tbody.__keyed.get(rows[hi].key) : null;
    attr(table, 'aria-activedescendant', hiRow ? hiRow.id : null);
    if (hiRow && con.reveal) hiRow.scrollIntoView({ block: 'nearest' });
    con.reveal = false;
  }

  return { kinds: ['intersection', 'feed', 'traffic'], clock: true, minMs: 250, render };
}
