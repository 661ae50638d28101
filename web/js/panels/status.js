// Status strip: who this wall is (Kendali, the city), the connection state
// ("TERHUBUNG" / "menyambung ulang..."), the age of the newest data, and the
// clock and date in WIB. Redrawn once a second and on connection changes.

import { h, text, sev } from '../dom.js';

export function create(el, { shell, replica, i18n, scenario, vp, city }) {
  const cityName = (scenario && (scenario.city_name ? `Kota ${scenario.city_name}` : scenario.title)) || (city ? city.replace(/(^|-)(\w)/g, (_, d, c) => (d ? ' ' : '') + c.toUpperCase()) : '');
  const mark = h('div', { class: 'brand-mark', 'aria-hidden': 'true' }, 'K');
  const brand = h('div', { class: 'brand' }, mark, h('div', { class: 'brand-text' }, h('strong', null, 'KENDALI'), h('span', null, i18n.t('app'))));
  const place = h('div', { class: 'place' }, cityName);
  const connDot = h('span', { class: 'dot' });
  const connText = h('span', { class: 'conn-text' });
  const conn = h('div', { class: 'conn', 'data-role': 'conn' }, connDot, connText);
  const dataLabel = h('span', { class: 'label' }, i18n.t('data'));
  const dataAge = h('span', { class: 'data-age-value' });
  const data = h('div', { class: 'data-age' }, dataLabel, dataAge);
  const screenEl = vp.screen ? h('div', { class: 'screen-no' }, i18n.t('screen', { n: vp.screen, of: vp.screens })) : null;
  const clock = h('div', { class: 'clock' });
  const zone = h('span', { class: 'zone' }, i18n.t('wib'));
  const date = h('div', { class: 'date' });
  const time = h('div', { class: 'time' }, h('div', { class: 'clock-row' }, clock, zone), date);
  el.append(...[brand, place, h('div', { class: 'spacer' }), conn, data, screenEl, time].filter(Boolean));

  function render({ now }) {
    const c = shell.conn;
    el.dataset.conn = c.state;
    sev(conn, c.state === 'live' ? 'ok' : 'warn');
    const attempt = c.state === 'reconnecting' && c.attempt > 1 ? ` · ${i18n.t('conn_attempt', { n: c.attempt })}` : '';
    text(connText, c.state === 'live' ? i18n.t('conn_live') : c.state === 'connecting' ? i18n.t('conn_connecting') : i18n.t('conn_reconnecting') + attempt);
    let newest = NaN;
    for (const v of replica.newestRx.values()) if (!(newest >= v)) newest = v;
    const ageS = (now - newest) / 1000;
    text(dataAge, Number.isFinite(ageS) ? i18n.age(ageS) : '–');
    sev(data, !Number.isFinite(ageS) ? 'stale' : ageS > 30 ? 'crit' : ageS > 5 ? 'warn' : 'ok');
    text(clock, i18n.clock(now));
    text(date, i18n.date(now));
  }

  return { kinds: ['conn'], clock: true, render };
}
