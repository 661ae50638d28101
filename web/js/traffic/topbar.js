// The console's top bar: Kendali, the console's name and city, the officer's
// districts, a notice when the role may not issue commands, the count of
// junctions on the board by condition (and without data), the connection
// state, and the server's clock and date in the city's time (WIB).

import { h, text, attr, sev } from '../dom.js';
import { brand, liveParts } from '../shell/strip.js';
import { CONDITIONS, COND_SEV } from './model.js';

/** Junction updates recount at most this often, ms (the clock still turns every second). */
const COUNT_EVERY_MS = 500;

export function create(el, { shell, i18n, t, scenario, city, con }) {
  const cityName = (scenario && (scenario.city_name ? `Kota ${scenario.city_name}` : scenario.title)) || city || '';
  const place = h('div', { class: 'place' }, cityName);
  const scope = h('div', { class: 'scope' }, con.scope.all ? t('scope_all') : t('scope', { list: con.scope.districts.join(', ') }));
  const notice = con.mayAct ? null : h('div', { class: 'notice', 'data-sev': 'warn', role: 'status' }, t('read_only'));
  const total = h('span', { class: 'cc-total' });
  const chips = CONDITIONS.map((kind) => {
    const n = h('span', { class: 'cc-n' });
    const chip = h('span', { class: 'cc', 'data-condition': kind }, h('span', { class: 'cc-label' }, t(`cond.${kind}`)), n);
    return { kind, chip, n };
  });
  const staleN = h('span', { class: 'cc-n' });
  const staleChip = h('span', { class: 'cc', 'data-condition': 'stale' }, h('span', { class: 'cc-label' }, t('stale_count')), staleN);
  const counts = h('div', { class: 'cond-counts', role: 'status' }, total, ...chips.map((c) => c.chip), staleChip);
  const live = liveParts(el, { shell, i18n });
  el.append(...[brand(t('title')), place, scope, counts, h('div', { class: 'spacer' }), notice, live.conn, live.time].filter(Boolean));

  /** When the counts were last made (page time, ms): junction updates recount at most every COUNT_EVERY_MS. */
  let countedAt = -Infinity;

  function render({ now, tick, dirty }) {
    live.render(now);
    const t0 = performance.now();
    if (!tick && !dirty.has('traffic') && t0 - countedAt < COUNT_EVERY_MS) return;
    countedAt = t0;
    const rows = con.rows();
    const n = new Map(CONDITIONS.map((k) => [k, 0]));
    let stale = 0;
    for (const r of rows) {
      if (r.stale) stale++;
      const kinds = new Set(r.conditions.map((c) => c.kind));
      for (const k of kinds) if (n.has(k)) n.set(k, n.get(k) + 1);
    }
    text(total, t('total', { n: i18n.num(rows.length) }));
    for (const c of chips) {
      const v = n.get(c.kind);
      text(c.n, i18n.num(v));
      attr(c.chip, 'data-count', v);
      sev(c.chip, v ? COND_SEV[c.kind] : 'none');
    }
    text(staleN, i18n.num(stale));
    attr(staleChip, 'data-count', stale);
    sev(staleChip, stale ? 'stale' : 'none');
  }

  return { kinds: ['conn', 'intersection', 'feed', 'traffic'], clock: true, render };
}
