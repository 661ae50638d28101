// The opened junction in full: name, district, id, level of service, mode,
// plan, cycle and automatic mode; the signal ring (ring.js); every approach
// as a selectable row (DS, queue, flow, green, detector; j/k move, `e`
// extends the selected one's green); Kendali's suggestions, the top one
// approved with `a`; the DS charts of the last hour and day against the
// week before (drawn by the server, read again every minute); and the
// junction's commands, newest first (the live ones and, read from the
// store when it opens and every minute, the older ones). A junction with
// only its info (no state yet) or only its state (no info: its id is its
// name) shows what it has.

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { createRing } from './ring.js';
import { COND_SEV, MODE_SEV, isoWib, los, rankedSuggestions } from './model.js';
import { makeCommandRow, fillCommandRow } from './cmdrow.js';

const CHART_W = 440;
const CHART_H = 150;
const HOUR_MS = 3600_000;

/** A server-drawn DS chart of `city`/`id` over the `spanMs` before `now`, compared with the week before. */
function chartUrl(city, id, spanMs, now) {
  const q = new URLSearchParams({ metric: 'saturation', from: isoWib(now - spanMs), to: isoWib(now), width: String(CHART_W), height: String(CHART_H), compare: 'week' });
  return `/api/charts/atcs/${encodeURIComponent(city)}/${encodeURIComponent(id)}.svg?${q}`;
}

export function create(el, { con, i18n, t }) {
  const none = h('div', { class: 'empty' }, t('detail_none'));
  const name = h('h3', { class: 'd-name' });
  const jid = h('span', { class: 'd-id' });
  const badge = h('span', { class: 'los-badge' });
  const stale = h('div', { class: 'd-stale', hidden: true });
  const gone = h('div', { class: 'd-gone', 'data-sev': 'warn', hidden: true }, t('detail_gone'));
  const conds = h('div', { class: 'conds' });
  const fields = h('dl', { class: 'd-fields' });
  const field = (label) => {
    const dd = h('dd');
    fields.append(h('dt', null, label), dd);
    return dd;
  };
  const f = { district: field(t('f_district')), mode: field(t('f_mode')), plan: field(t('f_plan')), cycle: field(t('f_cycle')), auto: field(t('f_auto')) };
  const ring = createRing(t);
  const noState = h('div', { class: 'empty', hidden: true }, t('no_state'));

  const cols = ['id', 'ds', 'queue', 'flow', 'green', 'detector'];
  const tbody = h('tbody');
  const approaches = h(
    'table',
    { class: 'approaches', role: 'grid', tabindex: '0', 'data-zone': 'approaches', 'aria-label': t('a_col.id') },
    h('thead', null, h('tr', null, ...cols.map((c) => h('th', { scope: 'col', class: `a-${c}` }, t(`a_col.${c}`))))),
    tbody,
  );
  con.el.approaches = approaches;
  tbody.addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-approach]');
    if (!row) return;
    con.selectApproach(row.dataset.approach);
    approaches.focus({ preventScroll: true });
  });

  const suggList = h('div', { class: 'sugg-list' });
  const suggNone = h('div', { class: 'empty', hidden: true }, t('sugg_none'));
  const img1 = h('img', { class: 'chart', alt: t('chart_1h'), width: CHART_W, height: CHART_H });
  const img24 = h('img', { class: 'chart', alt: t('chart_24h'), width: CHART_W, height: CHART_H });
  const history = h('div', { class: 'history' });
  const historyNone = h('div', { class: 'empty', hidden: true }, t('history_empty'));
  const historyOld = h('div', { class: 'empty history-old', hidden: true }, t('history_old_failed'));
  const sub = (label) => h('h4', { class: 'd-sub' }, label);

  // The approaches' grid is always there (empty when nothing is open), so
  // that Enter on the board can give it the keys before the next render.
  const top = h('div', { class: 'd-part', hidden: true }, h('div', { class: 'd-head' }, badge, name, jid), stale, gone, conds, h('div', { class: 'd-top' }, fields, ring.el), noState);
  const rest = h(
    'div',
    { class: 'd-part', hidden: true },
    sub(t('sugg_title')),
    suggList,
    suggNone,
    sub(t('charts_title')),
    h('div', { class: 'charts' }, h('figure', null, img1, h('figcaption', null, t('chart_1h'))), h('figure', null, img24, h('figcaption', null, t('chart_24h')))),
    sub(t('history_title')),
    history,
    historyNone,
    historyOld,
  );
  const body = h('div', { class: 'd-body' }, none, top, approaches, rest);
  el.append(h('header', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, t('detail_title'))), body);
  con.el.detail = el;

  let chartKey = null;

  function makeApproach() {
    const cells = cols.map((c) => h('td', { class: `a-${c}` }));
    const row = h('tr', { role: 'row' }, ...cells);
    row._ = Object.fromEntries(cols.map((c, i) => [c, cells[i]]));
    return row;
  }

  function fillApproach(row, a) {
    const e = row._;
    const st = a.state;
    const selected = a.id === con.approach;
    attr(row, 'data-approach', a.id);
    attr(row, 'aria-selected', selected ? 'true' : 'false');
    cls(row, 'selected', selected);
    text(e.id, a.name && a.name !== a.id ? `${a.id} · ${a.name}` : a.id);
    const ds = st ? st.saturation : null;
    text(e.ds, ds == null ? '–' : i18n.num(ds, 2));
    sev(e.ds, los(ds).sev);
    text(e.queue, st ? i18n.num(st.queue_m) : '–');
    text(e.flow, st ? i18n.num(st.flow_vph) : '–');
    text(e.green, st ? i18n.num(st.green_s) : '–');
    text(e.detector, st ? (st.detector_ok ? t('det_ok') : t('det_bad')) : '–');
    sev(e.detector, st && !st.detector_ok ? 'warn' : null);
    attr(row, 'data-detector', st ? (st.detector_ok ? 'ok' : 'fault') : null);
  }

  function makeSugg() {
    const key = h('kbd');
    const words = h('span', { class: 'sugg-text' });
    const row = h('div', { class: 'sugg' }, key, words);
    row._ = { key, words };
    return row;
  }

  function fillSugg(row, { s, first }) {
    attr(row, 'data-approach', s.approach);
    text(row._.key, first ? 'a' : '');
    row._.key.hidden = !first;
    text(row._.words, t('sugg', { s: i18n.num(s.seconds), approach: s.approach, ds: i18n.num(s.saturation, 2), q: i18n.num(s.queue_m) }));
    attr(row, 'title', first ? t('sugg_key') : null);
  }

  function condBadge() {
    return h('span', { class: 'cond' });
  }

  function fillCond(b, c) {
    const what = t('cond_since', { what: t(`cond.${c.kind}`), time: i18n.time(Date.parse(c.since)) });
    text(b, c.approach ? `${what} · ${c.approach}` : what);
    attr(b, 'data-condition', c.kind);
    sev(b, COND_SEV[c.kind] || 'watch');
  }

  function render({ dirty, keys, tick, now }) {
    // Thousands of junctions update every second: only the opened one's updates matter here.
    const changed = keys.get('intersection');
    const mine = tick || dirty.has('traffic') || dirty.has('command') || dirty.has('feed') || (dirty.has('intersection') && (!changed || changed.has(con.selected)));
    if (!mine) return;
    const j = con.target();
    none.hidden = !!j;
    top.hidden = rest.hidden = !j;
    if (!j) {
      chartKey = null;
      con.commands.stored.want(null);
      keyed(tbody, [], (a) => a.id, makeApproach, fillApproach);
      return;
    }
    const r = j.row;
    gone.hidden = !!r;
    text(name, j.name);
    text(jid, j.id);
    text(badge, r ? r.grade : '?');
    sev(badge, r ? r.sev : 'stale');
    const staleNote = r && r.stale ? (Number.isFinite(r.staleSince) ? t('stale', { time: i18n.time(r.staleSince) }) : t('stale_never')) : '';
    text(stale, staleNote);
    stale.hidden = !staleNote;
    cls(el, 'stale', !!(r && r.stale));
    keyed(conds, r ? r.conditions : [], (c) => `${c.kind}/${c.approach || ''}`, condBadge, fillCond);
    const st = r ? r.v.state : null;
    text(f.district, (r && r.district) || t('no_district'));
    text(f.mode, st ? t(`mode.${st.mode}`) : '–');
    sev(f.mode, st ? MODE_SEV[st.mode] || 'none' : null);
    text(f.plan, st ? String(st.plan) : '–');
    text(f.cycle, st ? t('ring_cycle', { s: i18n.num(st.cycle_s) }) : '–');
    const auto = r && r.auto;
    text(f.auto, auto ? t('auto_yes', { used: i18n.num(auto.used_s), limit: i18n.num(auto.limit_s) }) : t('auto_no'));
    ring.render(st, now, i18n);
    noState.hidden = !!st || !r;

    const list = con.approaches(r);
    keyed(tbody, list, (a) => a.id, makeApproach, fillApproach);
    const selRow = con.approach ? tbody.__keyed.get(con.approach) : null;
    if (selRow && con.revealApproach) selRow.scrollIntoView({ block: 'nearest' });
    con.revealApproach = false;

    const suggs = rankedSuggestions(r ? r.suggestions : []);
    keyed(suggList, suggs.map((s, i) => ({ s, first: i === 0 })), (x) => x.s.approach, makeSugg, fillSugg);
    suggNone.hidden = suggs.length > 0;

    const key = `${j.city}/${j.id}/${Math.floor(now / 60_000)}`;
    if (key !== chartKey) {
      chartKey = key;
      img1.src = chartUrl(j.city, j.id, HOUR_MS, now);
      img24.src = chartUrl(j.city, j.id, 24 * HOUR_MS, now);
    }

    con.commands.stored.want(j.city, j.id);
    const cmds = con.commands.history(j.city, j.id);
    keyed(history, cmds, (x) => x.c.command_id, () => makeCommandRow(false), (row, x) => fillCommandRow(row, x.c, { t, i18n, now }));
    historyNone.hidden = cmds.length > 0;
    historyOld.hidden = !con.commands.stored.failed;
  }

  return { kinds: ['intersection', 'command', 'feed', 'traffic'], clock: true, render };
}
