// The services overview's live feed: the newest service events first (type,
// service, reference, OPD, time in the city's zone), from the app events the
// server sends with the snapshot and as they arrive.

import { h, text, keyed } from '../dom.js';

/** Events listed. */
const SHOWN = 50;

export function create(el, { replica, i18n, scenario }) {
  const titles = new Map((scenario?.services || []).map((s) => [s.id, s.title]));
  const list = h('ol', { 'data-role': 'events' });
  el.append(h('h2', null, i18n.lang === 'en' ? 'Service events' : 'Peristiwa layanan'), list);
  let shown = [];
  const k = (window.__kendali = window.__kendali || {});

  function render() {
    const events = replica.recent('app_event');
    shown = events.slice(-SHOWN).reverse().map((e) => e.value || e);
    keyed(
      list,
      shown,
      (v) => v.event_id,
      (v) => h('li', { 'data-event': v.event_id }, h('span', { class: 'when' }), h('span', { class: 'what' }), h('span', { class: 'who' })),
      (li, v) => {
        text(li.children[0], i18n.time(Date.parse(v.ts)));
        text(li.children[1], `${v.type} · ${titles.get(v.service) || v.service}`);
        text(li.children[2], [v.ref, v.opd && v.opd.toUpperCase()].filter(Boolean).join(' · '));
      },
    );
    if (k.services) k.services.feed = () => shown.map((v) => v.event_id);
  }

  return { kinds: ['app_event', 'conn'], render };
}
