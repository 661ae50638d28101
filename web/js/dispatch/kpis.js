// The shift KPI strip, from the city's `counters` update (today in the
// city's local day, lines 112 and 119 together; exact for the whole day and
// unchanged by a reload): today's calls, mean answer time, the shares
// answered within 10, 15 and 20 s (of calls answered or abandoned, as the
// wall counts them) against the answer standard's targets where it has one
// (the target written under the share, coloured by shareSeverity: red below
// it, amber just above), the mean of the slowest 10 % (both lines' tails
// together, the exact figure per line under it: see indicators.js), the
// abandon rate and the share of prank and ghost calls among triaged ones.

import { h, text, sev } from '../dom.js';
import { shareSeverity } from '../targets.js';
import { cityIndicators, LINES, WITHIN_S } from '../indicators.js';
import { TARGETS, answerTarget } from './targets.js';

export function create(el, { replica, city, i18n, t }) {
  const title = h('h2', { class: 'kpi-title' }, t('kpi_title'));
  el.append(title);
  const tile = (label, hint, withSub) => {
    const value = h('span', { class: 'kpi-value' });
    const sub = withSub ? h('span', { class: 'kpi-sub' }) : null;
    const node = h('div', { class: 'kpi', title: hint || null }, h('span', { class: 'kpi-label' }, label), value, sub);
    el.append(node);
    return { node, value, sub };
  };
  const calls = tile(t('kpi_calls'));
  const avg = tile(t('kpi_avg_answer'), t('kpi_avg_hint'));
  const within = WITHIN_S.map((s) => ({ s, ...tile(t('kpi_within', { s }), t('kpi_within_hint', { s }), true) }));
  const slowest = tile(t('kpi_slowest'), t('kpi_slowest_hint'), true);
  const abandon = tile(t('kpi_abandon'), t('kpi_abandon_hint'));
  const prank = tile(t('kpi_prank'), t('kpi_prank_hint'));
  const secs = (v) => (v == null ? '–' : t('seconds', { v: i18n.num(v, 1) }));
  const pctOf = (v) => `${i18n.num(v, Number.isInteger(v) ? 0 : 1)} %`;

  /** The console's city's counters (every city's when the console shows them all). */
  function counters() {
    const m = replica.get('counters');
    if (city) return [m.get(city)?.value];
    return [...m.values()].map((e) => e.value);
  }

  function render() {
    const k = cityIndicators(counters());
    text(calls.value, i18n.num(k.received));
    text(avg.value, secs(k.meanAnswerS));
    for (const w of within) {
      const v = k.within[w.s];
      const target = answerTarget(w.s);
      text(w.value, i18n.pct(v));
      // A threshold the standard sets no target for has no target line and no colour.
      text(w.sub, target == null ? '' : t('kpi_target', { v: pctOf(target), std: TARGETS.standard.toUpperCase() }));
      w.sub.hidden = target == null;
      sev(w.node, target == null ? null : shareSeverity(v, target));
    }
    text(slowest.value, secs(k.slowestS));
    text(slowest.sub, LINES.map((line) => `${line}: ${k.slowestByLine[line] == null ? '–' : i18n.num(k.slowestByLine[line], 1)}`).join(' · '));
    text(abandon.value, i18n.pct(k.abandonPct));
    text(prank.value, i18n.pct(k.prankGhostPct));
  }

  // 'dispatch': the targets arrived from the server after the first render.
  // Counters change with every call event: once a second is enough.
  return { kinds: ['counters', 'dispatch'], clock: false, minMs: 1000, render };
}
