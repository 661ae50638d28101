// The services overview (/services), as a page for the shell: every service
// application of the city grouped by category (the scenario's or the
// imported catalogue's; a service the catalogue does not name joins "lainnya"
// as its data arrives), each with its headline KPI against its target, the
// freshness of its feeds and today's events by type (the city's counters), and
// the live feed of their events. A filter narrows the rows by name, id, OPD
// or category. `window.__kendali.services` for tests: `rows()` (the service
// ids shown, in order) and `feed()` (the event ids in the feed, newest first).

import { mount } from '../shell/shell.js';
import { h } from '../dom.js';
import { brand, liveParts } from '../shell/strip.js';
import * as overview from './overview.js';
import * as feed from './feed.js';

/** A service's KPIs and their feeds, the city's counters, and the app events. */
const KINDS = 'kpi,counters,feed,app_event';

const top = {
  create(el, { shell, i18n }) {
    const parts = liveParts(el, { shell, i18n });
    const count = h('span', { class: 'svc-count', 'data-role': 'count' });
    const filter = h('input', { class: 'svc-filter', type: 'search', placeholder: i18n.lang === 'en' ? 'Filter: name, OPD, category' : 'Saring: nama, OPD, kategori', 'aria-label': 'filter' });
    el.append(brand(i18n.lang === 'en' ? 'City services' : 'Layanan Kota'), count, parts.conn, filter, parts.time);
    filter.addEventListener('input', () => shell.invalidate('filter'));
    shell.filter = () => filter.value.trim().toLowerCase();
    shell.countEl = count;
    return { kinds: ['conn'], clock: true, render: ({ now }) => parts.render(now) };
  },
};

await mount({
  root: document.getElementById('services'),
  panels: { top, overview, feed },
  staleFamilies: ['apps', 'kpi'],
  subscription: ({ city }) => ({ kinds: KINDS, cities: city }),
  setup({ root, i18n }) {
    document.title = `Kendali · ${i18n.lang === 'en' ? 'City services' : 'Layanan Kota'}`;
    const topEl = h('header', { class: 'svc-top' });
    const groupsEl = h('main', { class: 'svc-groups', 'data-role': 'groups' });
    const feedEl = h('aside', { class: 'svc-feed', 'data-role': 'feed' });
    root.append(topEl, groupsEl, feedEl);
    return {
      panels: [
        { type: 'top', el: topEl },
        { type: 'overview', el: groupsEl },
        { type: 'feed', el: feedEl },
      ],
    };
  },
});
