// The console's top bar: Kendali, the console's name and city, a notice when
// the signed-in role may not act on calls or see callers' personal data, the
// connection state, and the server's clock and date in the city's time (WIB).

import { h } from '../dom.js';
import { brand, liveParts } from '../shell/strip.js';

export function create(el, { shell, i18n, t, scenario, city, me }) {
  const cityName = (scenario && (scenario.city_name ? `Kota ${scenario.city_name}` : scenario.title)) || city || '';
  const place = h('div', { class: 'place' }, cityName);
  const may = me.may || {};
  const notice = !may.dispatch ? t('read_only') : !may.personal_data ? t('no_personal') : null;
  const noticeEl = notice ? h('div', { class: 'notice', 'data-sev': 'warn', role: 'status' }, notice) : null;
  const live = liveParts(el, { shell, i18n });
  el.append(...[brand(t('title')), place, h('div', { class: 'spacer' }), noticeEl, live.conn, live.time].filter(Boolean));

  return { kinds: ['conn'], clock: true, render: ({ now }) => live.render(now) };
}
