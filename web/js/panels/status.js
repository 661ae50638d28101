// Status strip: who this wall is (Kendali, the city), the connection state
// ("TERHUBUNG" / "menyambung ulang..."), the age of the newest data, and the
// clock and date in WIB. Redrawn once a second and on connection changes.

import { h, text, sev } from '../dom.js';
import { brand, liveParts } from '../shell/strip.js';

export function create(el, { shell, replica, i18n, scenario, vp, city }) {
  const cityName = (scenario && (scenario.city_name ? `Kota ${scenario.city_name}` : scenario.title)) || (city ? city.replace(/(^|-)(\w)/g, (_, d, c) => (d ? ' ' : '') + c.toUpperCase()) : '');
  const place = h('div', { class: 'place' }, cityName);
  const live = liveParts(el, { shell, i18n });
  const dataLabel = h('span', { class: 'label' }, i18n.t('data'));
  const dataAge = h('span', { class: 'data-age-value' });
  const data = h('div', { class: 'data-age' }, dataLabel, dataAge);
  const screenEl = vp.screen ? h('div', { class: 'screen-no' }, i18n.t('screen', { n: vp.screen, of: vp.screens })) : null;
  el.append(...[brand(i18n.t('app')), place, h('div', { class: 'spacer' }), live.conn, data, screenEl, live.time].filter(Boolean));

  function render({ now }) {
    live.render(now);
    let newest = NaN;
    for (const v of replica.newestRx.values()) if (!(newest >= v)) newest = v;
    const ageS = (now - newest) / 1000;
    text(dataAge, Number.isFinite(ageS) ? i18n.age(ageS) : '–');
    sev(data, !Number.isFinite(ageS) ? 'stale' : ageS > 30 ? 'crit' : ageS > 5 ? 'warn' : 'ok');
  }

  return { kinds: ['conn'], clock: true, render };
}
