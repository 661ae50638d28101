// Alerts: the wall's list of live alerts (the server's alert rules decide
// what is one), grouped by incident (alerts sharing a `group`: a junction's,
// a call's), the incidents with an unacknowledged alert first, then by
// priority and age; each alert with its priority, its state in words
// (BELUM DIAKUI filled and flashing, DIAKUI and who outlined), its
// sentence and since when, and Akui / Tunda for a person who may act. In
// the header the alarm rate against the ISA-18.2 / EEMUA 191 flood limit
// ("7 / 10 per 10 mnt", BANJIR ALARM past it); above the list the counts by
// priority; under it the shelved alerts, folded away (greyed, with who
// shelved them until when, and Lepas tunda), and the count suppressed by
// design. Rows: `.al-row[data-alert-id][data-state][data-priority][data-group]`.

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { frame } from './frame.js';
import { prioritySeverity } from '../targets.js';
import { alertKey, needsAck } from '../alerts/model.js';
import { alertText, entityWhat, sinceText } from '../alerts/text.js';
import { prioChip, fillPrio, stateTag, fillState, actionBox } from '../alerts/ui.js';

/** Heights in rem, as wall.css sets them: an incident's heading and an alert's row (gaps included). */
const GROUP_REM = 1.9;
const ROW_REM = 3.6;
/** Rows never exceed this, whatever the panel height (bounded DOM). */
const MAX_ROWS = 40;
/** Shelved alerts listed at most. */
const MAX_SHELVED = 12;

export function create(el, { alerts: api, i18n, layout, invalidate }) {
  const { t } = api;
  const f = frame(el, t('title'));
  f.age.remove();
  const rate = h('span', { class: 'al-rate', 'data-testid': 'alert-rate' });
  f.head.append(rate);
  const chips = [1, 2, 3, 4].map((p) => {
    const n = h('span', { class: 'n' });
    const chip = h('span', { class: 'al-count', 'data-priority': p }, h('span', { class: 'al-prio', 'data-sev': prioritySeverity(p) }, t('prio_chip', { p })), n);
    return { p, chip, n };
  });
  const unacked = h('span', { class: 'al-unacked' });
  const counts = h('div', { class: 'al-counts' }, ...chips.map((c) => c.chip), unacked);
  const list = h('div', { class: 'al-list' });
  const empty = h('div', { class: 'empty ok-note' }, t('none'));
  const more = h('div', { class: 'more', hidden: true });
  const shelfCount = h('span');
  const shelfList = h('div', { class: 'al-shelf-list' });
  const shelf = h('details', { class: 'al-shelved' }, h('summary', null, shelfCount), shelfList);
  const foot = h('div', { class: 'al-foot' });
  f.body.append(counts, list, empty, more, shelf, foot);

  // What fits: a budget of rem, spent on incident headings and rows.
  let budget = 20;
  new ResizeObserver(() => {
    budget = list.clientHeight / layout.font_px;
    invalidate('alerts');
  }).observe(list);

  function makeGroup() {
    const name = h('span', { class: 'al-group-name' });
    const n = h('span', { class: 'al-group-n' });
    const row = h('div', { class: 'al-group' }, name, n);
    row._ = { name, n };
    return row;
  }

  function makeRow() {
    const prio = prioChip();
    const state = stateTag();
    const what = h('span', { class: 'al-text' });
    const since = h('span', { class: 'al-since' });
    const box = actionBox(api);
    const row = h('div', { class: 'al-row' }, h('div', { class: 'al-r1' }, prio, state, what), h('div', { class: 'al-r2' }, since, box.el));
    row._ = { prio, state, what, since, box };
    return row;
  }

  function make(item) {
    return item.inc ? makeGroup() : makeRow();
  }

  function fillRow(row, a, now, shelved, grouped) {
    const e = row._;
    attr(row, 'data-alert-id', a.alert_id);
    attr(row, 'data-state', a.state);
    attr(row, 'data-priority', a.priority);
    attr(row, 'data-group', a.group);
    attr(row, 'data-ack', shelved ? 'shelved' : needsAck(a) ? 'no' : 'yes');
    cls(row, 'grouped', !!grouped);
    fillPrio(e.prio, a, t);
    sev(row, e.prio.dataset.sev || null);
    fillState(e.state, a, api, shelved);
    text(e.what, alertText(a, api));
    let when;
    if (shelved) {
      when = t('shelved_until', { who: a.shelved_by || '–', time: i18n.time(Date.parse(a.shelved_until)) });
      if (a.reason) when += ` · ${t('shelved_reason', { reason: a.reason })}`;
    } else {
      when = sinceText(a, now, api);
      if (a.state === 'cleared_unack' && a.cleared_at) when += ` · ${t('cleared_at', { time: i18n.time(Date.parse(a.cleared_at)) })}`;
    }
    text(e.since, when);
    e.box.fill(a, shelved);
  }

  function update(row, item, now) {
    if (!item.inc) {
      fillRow(row, item.a, now, false, item.grouped);
      return;
    }
    const inc = item.inc;
    attr(row, 'data-group', inc.group);
    text(row._.name, entityWhat({ ...inc.top, entity: inc.group }, api));
    text(row._.n, t('group_n', { n: inc.alerts.length }));
    sev(row, prioritySeverity(inc.priority));
  }

  /** Headings and rows that fit the budget, and how many alerts were left out. */
  function layoutItems(v) {
    const items = [];
    let spent = 0;
    let shownAlerts = 0;
    for (const inc of v.incidents) {
      const grouped = inc.alerts.length > 1;
      const head = grouped ? GROUP_REM : 0;
      if (spent + head + ROW_REM > budget || items.length >= MAX_ROWS) break;
      if (grouped) items.push({ key: `g|${inc.key}`, inc });
      spent += head;
      for (const a of inc.alerts) {
        if (spent + ROW_REM > budget || items.length >= MAX_ROWS) break;
        items.push({ key: alertKey(a), a, grouped });
        spent += ROW_REM;
        shownAlerts++;
      }
    }
    return { items, hidden: v.list.length - shownAlerts };
  }

  function render({ now }) {
    const v = api.model.view();
    const { items, hidden } = layoutItems(v);
    keyed(list, items, (x) => x.key, make, (row, item) => update(row, item, now));
    empty.hidden = v.list.length > 0;
    more.hidden = hidden <= 0;
    if (hidden > 0) text(more, t('more', { n: hidden }));
    for (const c of chips) {
      const n = v.byPriority[c.p] || 0;
      text(c.n, i18n.num(n));
      cls(c.chip, 'zero', n === 0);
    }
    text(unacked, t('unacked_n', { n: i18n.num(v.unacked) }));
    sev(unacked, v.unacked ? 'crit' : 'none');
    const r = v.rate;
    text(rate, r.flood ? `▲ ${t('flood')} · ${t('rate', { n: r.n, limit: r.limit, min: r.windowMin })}` : t('rate', { n: r.n, limit: r.limit, min: r.windowMin }));
    attr(rate, 'title', t('rate_hint', { limit: r.limit, min: r.windowMin }));
    attr(rate, 'data-flood', r.flood ? 'true' : 'false');
    attr(rate, 'data-count', r.n);
    sev(rate, r.flood ? 'crit' : r.n >= r.limit * 0.7 ? 'warn' : 'none');
    cls(el, 'flood', r.flood);
    text(shelfCount, t('shelved_n', { n: i18n.num(v.shelved.length) }));
    shelf.hidden = v.shelved.length === 0;
    keyed(shelfList, v.shelved.slice(0, MAX_SHELVED), alertKey, makeRow, (row, a) => fillRow(row, a, now, true, false));
    text(foot, v.suppressed ? t('suppressed_n', { n: i18n.num(v.suppressed) }) : '');
  }

  return { kinds: ['alert', 'alerts'], clock: true, render };
}
