// Ticker: the latest notable events (new priority-1 calls, junctions over
// capacity and back, signals flashing or off, feeds stopping and resuming,
// call surges), newest first, each with its WIB time and severity. It does
// not scroll: items stand still so they can be read from across the room;
// new ones push the oldest off. Options: `rows` (1 by default).

import { h, text, sev, keyed } from '../dom.js';

const SEV_GLYPH = { crit: '■', warn: '▲', ok: '●', info: '◆' };

export function create(el, { notable, i18n, options, layout, invalidate }) {
  const label = h('div', { class: 'ticker-label' }, i18n.t('ticker_title'));
  const list = h('div', { class: 'ticker-list' });
  const empty = h('div', { class: 'empty' }, i18n.t('ticker_empty'));
  el.append(label, list, empty);
  el.style.setProperty('--ticker-rows', String(options.rows || 1));
  let capacity = 4;
  new ResizeObserver(() => {
    const rem = layout.font_px;
    capacity = Math.max(1, Math.floor(list.clientWidth / (34 * rem))) * (options.rows || 1);
    invalidate('notes');
  }).observe(list);

  function words(n) {
    const v = { ...n.vars };
    if (n.key === 'ev_p1') {
      v.cat = i18n.t(`cat.${v.cat}`);
      v.where = v.where ? ` · ${v.where}` : '';
    }
    if (n.key === 'ev_incident' || n.key === 'ev_incident_clear') {
      v.ds = i18n.num(v.ds, 2);
    }
    if (n.key === 'ev_mode') v.mode = i18n.t(`mode.${v.mode}`);
    if (n.key === 'ev_stale' || n.key === 'ev_fresh') v.what = `${i18n.t(`family.${v.family}`)} ${v.source}`;
    return i18n.t(n.key, v);
  }

  function render() {
    const items = notable.notes.items;
    const shown = items.slice(-capacity).reverse();
    empty.hidden = shown.length > 0;
    keyed(
      list,
      shown,
      (n) => n.id,
      () => h('div', { class: 'tick' }, h('span', { class: 'glyph' }), h('span', { class: 'when' }), h('span', { class: 'what' })),
      (row, n) => {
        sev(row, n.sev);
        text(row.children[0], SEV_GLYPH[n.sev] || '◆');
        text(row.children[1], i18n.time(n.at));
        text(row.children[2], words(n));
      },
    );
  }

  return { kinds: ['notes'], clock: false, render };
}
