// Alert banner: across the top of the wall, the highest-priority live alert
// (alerts/model.js's banner order: priority, then what needs a person,
// then the oldest), to be read from across the room: its priority in number
// and word, its state in words (BELUM DIAKUI on a filled, pulsing banner
// with a thick border; DIAKUI and who, steady and outlined), its sentence,
// since when, how many others are live (and how many of those wait for an
// acknowledgement) and the alarm-flood mark; Akui / Tunda for a person who
// may act. With no live alert it says so, calmly (and how many are
// shelved). The banner is `#alert-banner` with `data-alert-id`,
// `data-state` (the alert's state, `none` without one) and `data-priority`.

import { h, text, attr, sev } from '../dom.js';
import { needsAck } from '../alerts/model.js';
import { alertText, sinceText } from '../alerts/text.js';
import { prioChip, fillPrio, stateTag, fillState, actionBox } from '../alerts/ui.js';

export function create(el, { alerts: api, i18n }) {
  const { t } = api;
  const prio = prioChip();
  const state = stateTag();
  const what = h('span', { class: 'al-text' });
  const since = h('span', { class: 'al-since' });
  const more = h('span', { class: 'al-more' });
  const flood = h('span', { class: 'al-flood', 'data-sev': 'crit', hidden: true });
  const box = actionBox(api);
  const banner = h('div', { id: 'alert-banner', class: 'al-banner', 'data-state': 'none' }, prio, state, what, since, more, flood, box.el);
  el.append(banner);

  function render({ now }) {
    const v = api.model.view();
    const a = v.top;
    attr(banner, 'data-alert-id', a ? a.alert_id : null);
    attr(banner, 'data-state', a ? a.state : 'none');
    attr(banner, 'data-priority', a ? a.priority : null);
    attr(banner, 'data-ack', a ? (needsAck(a) ? 'no' : 'yes') : null);
    attr(banner, 'data-acked-by', a && a.acked_by ? a.acked_by : null);
    prio.hidden = !a;
    state.hidden = !a;
    box.el.hidden = !a;
    if (a) {
      fillPrio(prio, a, t, true);
      sev(banner, prio.dataset.sev || 'none');
      fillState(state, a, api);
      text(what, alertText(a, api));
      text(since, sinceText(a, now, api));
      box.fill(a, false);
    } else {
      sev(banner, 'ok');
      text(what, t('none'));
      text(since, '');
    }
    const others = v.list.length - (a ? 1 : 0);
    const othersUnacked = v.unacked - (a && needsAck(a) ? 1 : 0);
    const rest = others > 0 ? (othersUnacked > 0 ? t('more_unack', { n: others, u: othersUnacked }) : t('more', { n: others })) : '';
    // Shelved ones are out of the way, not forgotten: said when nothing else is.
    text(more, rest || (a || !v.shelved.length ? '' : t('shelved_n', { n: i18n.num(v.shelved.length) })));
    flood.hidden = !v.rate.flood;
    if (v.rate.flood) text(flood, `▲ ${t('flood')} ${v.rate.n}/${v.rate.limit}`);
  }

  return { kinds: ['alert', 'alerts'], clock: true, render };
}
