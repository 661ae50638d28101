// The services overview's groups: one row per service, grouped by category
// (the catalogue's order of first appearance; services outside the catalogue
// last, under "lainnya"), each with its headline KPI coloured against its
// target, the target, its OPD, greyed while its feeds are stale, and today's
// events by type (the most frequent first).

import { h, text, attr, cls, keyed } from '../dom.js';
import { kpiSeverity, lowerIsBetter } from '../targets.js';

const OTHER = 'lainnya';

export function create(el, { replica, i18n, scenario, shell }) {
  /** id -> {id, title, category, opd, kpi: {metric, unit, target}} */
  const catalogue = new Map();
  for (const sv of scenario?.services || []) {
    const k = sv.kpis?.[0];
    catalogue.set(sv.id, { id: sv.id, title: sv.title || sv.id, category: sv.category || OTHER, opd: sv.opd || '', kpi: k ? { metric: k.metric, unit: k.unit, target: k.target } : null });
  }
  const k = (window.__kendali = window.__kendali || {});
  k.services = { rows: () => [...el.querySelectorAll('.svc-row')].filter((r) => !r.hidden).map((r) => r.dataset.service), feed: () => [] };

  /** Services with data that the catalogue does not name join it. */
  function discover(counters) {
    const ids = new Set();
    for (const key of replica.get('kpi').keys()) {
      const [city, id] = key.split('/');
      if (!replica.city || city === replica.city) ids.add(id);
    }
    for (const id of Object.keys(counters?.app_events || {})) if (id !== '_other') ids.add(id);
    for (const id of ids) if (!catalogue.has(id)) catalogue.set(id, { id, title: id, category: OTHER, opd: '', kpi: null });
  }

  /** The headline KPI sample of a service: the catalogue's metric, else its first. */
  function headline(sv) {
    const m = replica.get('kpi');
    const prefix = `${replica.city || ''}/${sv.id}/`;
    if (sv.kpi) {
      for (const [key, e] of m) if (key.endsWith(`/${sv.id}/${sv.kpi.metric}`) && (!replica.city || key.startsWith(prefix))) return e.value;
      return null;
    }
    for (const [key, e] of m) if (key.split('/')[1] === sv.id && (!replica.city || key.startsWith(prefix))) return e.value;
    return null;
  }

  function render() {
    const cm = replica.get('counters');
    const counters = (replica.city && cm.get(replica.city)?.value) || cm.values().next().value?.value || null;
    discover(counters);
    const q = shell.filter ? shell.filter() : '';
    const stale = replica.feeds('kpi').staleSources;
    const groups = new Map();
    for (const sv of catalogue.values()) {
      const hay = `${sv.title} ${sv.id} ${sv.opd} ${sv.category}`.toLowerCase();
      if (q && !hay.includes(q)) continue;
      if (!groups.has(sv.category)) groups.set(sv.category, []);
      groups.get(sv.category).push(sv);
    }
    const order = [...groups.keys()].sort((a, b) => (a === OTHER) - (b === OTHER));
    let shown = 0;
    keyed(
      el,
      order,
      (g) => g,
      (g) => h('section', { class: 'svc-group', 'data-category': g }, h('h2'), h('div', { class: 'svc-rows' })),
      (sec, g) => {
        const list = groups.get(g);
        shown += list.length;
        text(sec.firstChild, `${g} · ${list.length}`);
        keyed(sec.lastChild, list, (sv) => sv.id, makeRow, (row, sv) => updateRow(row, sv, counters, stale));
      },
    );
    if (shell.countEl) text(shell.countEl, `${i18n.num(shown)} ${i18n.lang === 'en' ? 'services' : 'layanan'}`);
  }

  function makeRow(sv) {
    return h(
      'div',
      { class: 'svc-row', 'data-service': sv.id },
      h('div', { class: 'svc-title' }),
      h('div', { class: 'svc-kpi' }),
      h('div', { class: 'svc-opd' }),
      h('div', { class: 'svc-target' }),
      h('div', { class: 'svc-events' }),
    );
  }

  function updateRow(row, sv, counters, stale) {
    const [title, kpi, opd, target, events] = row.children;
    text(title, sv.title);
    text(opd, (sv.opd || '').toUpperCase());
    const v = headline(sv);
    const unit = v?.unit || sv.kpi?.unit || '';
    // The catalogue's target (the city's) before the one the sample carries.
    const tgt = sv.kpi?.target ?? v?.target ?? null;
    const metric = v?.metric || sv.kpi?.metric || '';
    text(kpi, v ? `${i18n.metric(metric)}: ${i18n.kpi(v.value, unit)}` : '–');
    text(target, tgt != null ? `target ${i18n.kpi(tgt, unit)}` : '');
    attr(row, 'data-sev', v ? kpiSeverity(v.value, tgt, lowerIsBetter(metric, unit)) : 'none');
    cls(row, 'stale', stale.has(sv.id));
    const types = Object.entries(counters?.app_events?.[sv.id] || {}).sort((a, b) => b[1] - a[1]);
    const total = types.reduce((a, [, n]) => a + n, 0);
    text(events, total ? `${i18n.lang === 'en' ? 'today' : 'hari ini'} ${i18n.num(total)}: ${types.slice(0, 4).map(([t, n]) => `${t} ${i18n.num(n)}`).join(' · ')}` : (i18n.lang === 'en' ? 'no events today' : 'belum ada peristiwa hari ini'));
    attr(events, 'data-total', String(total));
  }

  return { kinds: ['kpi', 'counters', 'feed', 'filter', 'conn'], clock: true, render };
}
