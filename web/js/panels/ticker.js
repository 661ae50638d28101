// Ticker: the latest alert transitions (an alert raised, acknowledged and
// by whom, cleared), newest first, each with its WIB time, priority and
// sentence; the server's alert rules decide what is an alert, this only
// tells what they did (alerts/model.js keeps the transitions). It does not
// scroll: items stand still so they can be read from across the room; new
// ones push the oldest off. Options: `rows` (1 by default).

import { h, text, sev, attr, keyed } from '../dom.js';
import { prioritySeverity } from '../targets.js';
import { alertText } from '../alerts/text.js';

const SEV_GLYPH = { crit: '■', warn: '▲', watch: '▲', ok: '●', info: '◆' };
/** The colour of a transition: a raise takes its priority's, an acknowledgement is information, a clear is good news. */
const TRANSITION_SEV = { acknowledged: 'info', cleared: 'ok' };

export function create(el, { alerts: api, i18n, options, layout, invalidate }) {
  const { t } = api;
  const label = h('div', { class: 'ticker-label' }, i18n.t('ticker_title'));
  const list = h('div', { class: 'ticker-list' });
  const empty = h('div', { class: 'empty' }, i18n.t('ticker_empty'));
  el.append(label, list, empty);
  el.style.setProperty('--ticker-rows', String(options.rows || 1));
  let capacity = 4;
  new ResizeObserver(() => {
    const rem = layout.font_px;
    capacity = Math.max(1, Math.floor(list.clientWidth / (34 * rem))) * (options.rows || 1);
    invalidate('alerts');
  }).observe(list);

  function sevOf(n) {
    if (TRANSITION_SEV[n.transition]) return TRANSITION_SEV[n.transition];
    return Number.isInteger(n.alert.priority) ? prioritySeverity(n.alert.priority) : 'info';
  }

  /** "P1 BARU · Panggilan 112-0042 …", "DIAKUI oleh dewi · …", "SELESAI · …". */
  function words(n) {
    const a = n.alert;
    let head;
    if (n.transition === 'raised') head = Number.isInteger(a.priority) ? `${t('prio_chip', { p: a.priority })} ${t('tr.raised')}` : t('tr.raised');
    else if (n.transition === 'acknowledged') head = a.acked_by ? t('tr.acknowledged', { who: a.acked_by }) : t('state.active_ack');
    else head = t('tr.cleared');
    return `${head} · ${alertText(a, api)}`;
  }

  function render() {
    const items = api.model.notes.items;
    const shown = items.slice(-capacity).reverse();
    empty.hidden = shown.length > 0;
    keyed(
      list,
      shown,
      (n) => n.id,
      () => h('div', { class: 'tick' }, h('span', { class: 'glyph' }), h('span', { class: 'when' }), h('span', { class: 'what' })),
      (row, n) => {
        const s = sevOf(n);
        sev(row, s);
        attr(row, 'data-alert-id', n.alert.alert_id);
        attr(row, 'data-transition', n.transition);
        text(row.children[0], SEV_GLYPH[s] || '◆');
        text(row.children[1], i18n.time(n.at));
        text(row.children[2], words(n));
      },
    );
  }

  return { kinds: ['alerts'], clock: false, render };
}
