// Status strip: who this wall is (Kendali, the city), the alerts' sound
// switch ("SUARA MATI" and "Aktifkan suara" until someone turns the chime
// on: browsers allow sound only after a click; alerts/ui.js), the connection
// state ("TERHUBUNG" / "menyambung ulang..."), the age of the newest data,
// and the clock and date in WIB. Redrawn once a second and on connection
// and sound changes.

import { h, text, sev } from '../dom.js';
import { brand, liveParts } from '../shell/strip.js';
import { soundControl } from '../alerts/ui.js';

export function create(el, { shell, replica, i18n, scenario, vp, city, alerts }) {
  const cityName = (scenario && (scenario.city_name ? `Kota ${scenario.city_name}` : scenario.title)) || (city ? city.replace(/(^|-)(\w)/g, (_, d, c) => (d ? ' ' : '') + c.toUpperCase()) : '');
  const place = h('div', { class: 'place' }, cityName);
  const live = liveParts(el, { shell, i18n });
  const dataLabel = h('span', { class: 'label' }, i18n.t('data'));
  const dataAge = h('span', { class: 'data-age-value' });
  const data = h('div', { class: 'data-age' }, dataLabel, dataAge);
  const screenEl = vp.screen ? h('div', { class: 'screen-no' }, i18n.t('screen', { n: vp.screen, of: vp.screens })) : null;
  // Once per page (a layout with two status strips shows it in the first).
  const sound = alerts ? soundControl(alerts) : null;
  el.append(...[brand(i18n.t('app')), place, h('div', { class: 'spacer' }), sound && sound.el, live.conn, data, screenEl, live.time].filter(Boolean));

  function render({ now }) {
    live.render(now);
    if (sound) sound.render();
    let newest = NaN;
    for (const v of replica.newestRx.values()) if (!(newest >= v)) newest = v;
    const ageS = (now - newest) / 1000;
    text(dataAge, Number.isFinite(ageS) ? i18n.age(ageS) : '–');
    sev(data, !Number.isFinite(ageS) ? 'stale' : ageS > 30 ? 'crit' : ageS > 5 ? 'warn' : 'ok');
  }

  return { kinds: ['conn', 'alerts'], clock: true, render };
}
