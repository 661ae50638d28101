// The shift KPI strip: today's calls, average answer time, the shares
// answered within 10, 15 and 20 s (15 and 20 s against the wall's 90 % and
// 95 % targets, coloured and with the target written), the average of the
// slowest 10 %, the abandon rate and the share of prank and ghost calls.
// Figures from kpi.js over the ShiftLog; recomputed at most once a second.

import { h, text, sev } from '../dom.js';
import { ANSWER, shareSeverity } from '../targets.js';
import { shiftKpis, WITHIN_S } from './kpi.js';

/** The targets some shares are held to (the wall's), by threshold in seconds. */
const SHARE_TARGETS = { [ANSWER.fastS]: ANSWER.fastPct, [ANSWER.slowS]: ANSWER.slowPct };

export function create(el, { i18n, t, shift }) {
  const title = h('h2', { class: 'kpi-title' }, t('kpi_title'));
  el.append(title);
  const tile = (label, hint, sub) => {
    const value = h('span', { class: 'kpi-value' });
    const node = h('div', { class: 'kpi', title: hint || null }, h('span', { class: 'kpi-label' }, label), value, sub ? h('span', { class: 'kpi-sub' }, sub) : null);
    el.append(node);
    return { node, value };
  };
  const calls = tile(t('kpi_calls'));
  const avg = tile(t('kpi_avg_answer'));
  const within = WITHIN_S.map((s) => {
    const target = SHARE_TARGETS[s];
    return { s, target, ...tile(t('kpi_within', { s }), t('kpi_within_hint', { s }), target ? t('kpi_target', { v: `${target} %` }) : null) };
  });
  const slowest = tile(t('kpi_slowest'));
  const abandon = tile(t('kpi_abandon'), t('kpi_abandon_hint'));
  const prank = tile(t('kpi_prank'), t('kpi_prank_hint'));
  const secs = (v) => (v == null ? '–' : t('seconds', { v: i18n.num(v, 1) }));

  function render({ now }) {
    const k = shiftKpis(shift.todays(now));
    text(calls.value, i18n.num(k.calls));
    text(avg.value, secs(k.avgAnswerS));
    for (const w of within) {
      const v = k.within[w.s];
      text(w.value, i18n.pct(v));
      if (w.target) sev(w.node, shareSeverity(v, w.target));
    }
    text(slowest.value, secs(k.slowestAvgS));
    text(abandon.value, i18n.pct(k.abandonPct));
    text(prank.value, i18n.pct(k.prankGhostPct));
  }

  return { kinds: ['call'], clock: true, minMs: 1000, render };
}
