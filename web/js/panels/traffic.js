// Traffic (ATCS): a count of junctions by grade, the most saturated
// junctions with their grade (letter and colour), degree of saturation, the
// approach that holds them, mode, plan and cycle; and the junctions that are
// offline (their feed is stale) or whose signals are flashing or off.

import { h, text, sev, attr, keyed, cls } from '../dom.js';
import { frame, freshness, newestOf } from './frame.js';
import { gradeOf } from '../targets.js';

const MAX_ROWS = 30;
const GRADE_ORDER = ['A', 'B', 'C', 'D', 'E', 'F'];

export function create(el, { replica, i18n, scenario, layout, invalidate }) {
  const f = frame(el, i18n.t('traffic_title'));
  const total = h('span', { class: 'total' });
  const chips = GRADE_ORDER.map((g) => {
    const n = h('span', { class: 'n' });
    const chip = h('span', { class: 'grade-count' }, h('span', { class: 'grade-badge small' }, g), n);
    sev(chip.firstChild, gradeSev(g));
    return { g, chip, n };
  });
  const offN = h('span', { class: 'n' });
  const offChip = h('span', { class: 'grade-count' }, h('span', { class: 'grade-badge small', 'data-sev': 'stale' }, '×'), offN);
  const summary = h('div', { class: 'grade-summary' }, total, ...chips.map((c) => c.chip), offChip);
  const worstList = h('div', { class: 'junction-list' });
  const worst = h('div', { class: 'section worst' }, h('h3', { class: 'section-title' }, i18n.t('worst_title')), worstList);
  const offList = h('div', { class: 'junction-list offline-list' });
  const allOk = h('div', { class: 'empty ok-note' }, i18n.t('all_online'));
  const offMore = h('div', { class: 'more', hidden: true });
  const off = h('div', { class: 'section offline' }, h('h3', { class: 'section-title' }, i18n.t('offline_title')), offList, allOk, offMore);
  const legend = h('div', { class: 'legend-line' }, i18n.t('grade_legend'));
  f.body.append(summary, worst, off, legend);

  // Rows that fit: the list of the worst gets what the offline list leaves.
  let capacity = 6;
  new ResizeObserver(() => {
    const rowPx = layout.font_px * 3.7;
    capacity = Math.max(1, Math.min(MAX_ROWS, Math.floor((worstList.clientHeight + 2) / rowPx)));
    invalidate('intersection');
  }).observe(worstList);

  // Names from the scenario until the junctions' own info arrives.
  const known = new Map((scenario?.intersections || []).map((i) => [i.id, i]));

  function approachName(v) {
    const id = v.worst_approach;
    if (!id) return '–';
    const a = v.info?.approaches?.find((x) => x.id === id) || known.get(v.id)?.approaches?.find((x) => x.id === id);
    return a ? a.name : id;
  }

  function makeRow() {
    const badge = h('span', { class: 'grade-badge' });
    const name = h('span', { class: 'name' });
    const ds = h('span', { class: 'ds' });
    const approach = h('span', { class: 'approach' });
    const ctl = h('span', { class: 'ctl' });
    const row = h('div', { class: 'junction-row' }, badge, h('div', { class: 'jn-text' }, h('div', { class: 'jn-top' }, name, ds), h('div', { class: 'jn-bottom' }, approach, ctl)));
    row._ = { badge, name, ds, approach, ctl };
    return row;
  }

  function fill(row, r) {
    const e = row._;
    attr(row, 'data-junction', r.id);
    text(e.badge, r.badge);
    sev(e.badge, r.sev);
    attr(e.badge, 'data-grade', r.badge);
    text(e.name, r.name);
    text(e.ds, r.dsText);
    sev(e.ds, r.sev);
    text(e.approach, r.approach);
    text(e.ctl, r.ctl);
    sev(e.ctl, r.ctlSev || 'none');
    cls(row, 'incident', r.sev === 'crit');
  }

  function render({ now }) {
    const feeds = replica.feeds('atcs');
    freshness(f, feeds, i18n, now, newestOf(replica, ['intersection']));
    const rows = [];
    const offline = [];
    const counts = Object.fromEntries(GRADE_ORDER.map((g) => [g, 0]));
    let n = 0;
    const seen = new Set();
    for (const { value: v } of replica.get('intersection').values()) {
      if (replica.city && v.city !== replica.city) continue;
      n++;
      seen.add(v.id);
      const name = v.info?.name || known.get(v.id)?.name || v.id;
      const st = v.state;
      const staleSince = feeds.staleSources.get(v.id);
      const mode = st?.mode;
      if (staleSince != null || mode === 'flashing' || mode === 'off' || !st) {
        const why = staleSince != null ? `${i18n.t('offline')} · ${i18n.t('since', { time: i18n.time(staleSince, true) })}` : st ? i18n.t(`mode.${mode}`) : i18n.t('no_data');
        offline.push({ id: v.id, name, badge: staleSince != null || !st ? '×' : '!', sev: staleSince != null || !st ? 'stale' : 'warn', dsText: '', approach: why, ctl: '', ctlSev: 'warn' });
        continue;
      }
      const { grade, sev: s } = gradeOf(v.worst_saturation);
      counts[grade] = (counts[grade] || 0) + 1;
      const ctl = [i18n.t(`mode.${mode}`), st.plan, i18n.t('cycle', { s: i18n.num(st.cycle_s) })].join(' · ');
      rows.push({ id: v.id, name, badge: grade, sev: s, ds: v.worst_saturation ?? -1, dsText: i18n.num(v.worst_saturation, 2), approach: `▸ ${approachName(v)}`, ctl, ctlSev: mode === 'manual' || mode === 'fixed' ? 'watch' : 'none' });
    }
    // Junctions in the scenario that never spoke are offline too.
    for (const [id, def] of known) {
      if (seen.has(id)) continue;
      n++;
      offline.push({ id, name: def.name, badge: '×', sev: 'stale', dsText: '', approach: i18n.t('no_data'), ctl: '' });
    }
    rows.sort((a, b) => b.ds - a.ds);
    offline.sort((a, b) => a.name.localeCompare(b.name));
    text(total, i18n.t('junctions', { n: i18n.num(n) }));
    for (const c of chips) {
      text(c.n, i18n.num(counts[c.g]));
      cls(c.chip, 'zero', !counts[c.g]);
    }
    text(offN, i18n.num(offline.length));
    cls(offChip, 'zero', !offline.length);
    const offShown = offline.slice(0, 4);
    const worstShown = rows.slice(0, capacity);
    keyed(worstList, worstShown, (r) => r.id, makeRow, fill);
    keyed(offList, offShown, (r) => r.id, makeRow, fill);
    allOk.hidden = offline.length > 0;
    offMore.hidden = offline.length <= offShown.length;
    if (!offMore.hidden) text(offMore, i18n.t('more', { n: offline.length - offShown.length }));
    cls(off, 'all-ok', offline.length === 0);
  }

  return { kinds: ['intersection', 'feed', 'conn'], clock: true, render };
}

function gradeSev(g) {
  return gradeOf({ A: 0.5, B: 0.65, C: 0.75, D: 0.85, E: 0.95, F: 1.1 }[g]).sev;
}
