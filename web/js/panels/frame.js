// Panel chrome shared by the data panels: a header (title, data age), a body,
// and the freshness rule: a panel whose feeds are all stale greys out and says
// since when; the age of its newest data is always on show.

import { h, text, cls, sev } from '../dom.js';

/** Combines the freshness of several families (a panel fed by more than one). */
export { mergeFeeds } from '../replica.js';

/** Builds the header and body inside a panel's section element. */
export function frame(el, title) {
  const titleEl = h('h2', { class: 'panel-title' });
  text(titleEl, title);
  const age = h('span', { class: 'panel-age', 'data-role': 'age' });
  const head = h('header', { class: 'panel-head' }, titleEl, age);
  const staleNote = h('div', { class: 'stale-note', hidden: true });
  const body = h('div', { class: 'panel-body' });
  el.append(head, staleNote, body);
  return { el, head, title: titleEl, age, body, staleNote };
}

/**
 * Shows the freshness of `feeds` (from `replica.feeds`) on a framed panel:
 * (`newestRx`: the newest receive time among the panel's entities, if known)
 * "data 3 dtk" in the header; when every feed is stale, the `stale` class
 * and "DATA TERHENTI sejak 14:02 WIB".
 */
export function freshness(f, feeds, i18n, now, newestRx = NaN) {
  if (!feeds.total) {
    text(f.age, i18n.t('no_data'));
    sev(f.age, 'stale');
    cls(f.el, 'stale', false);
    f.staleNote.hidden = true;
    return;
  }
  // Feeds refresh their `last_rx` only every few seconds; the entities' own
  // receive times (`newestRx`) can be newer.
  const newest = Number.isFinite(newestRx) && !(feeds.newest >= newestRx) ? newestRx : feeds.newest;
  const ageS = (now - newest) / 1000;
  text(f.age, i18n.t('data_age', { age: i18n.age(ageS) }));
  sev(f.age, feeds.allStale ? 'stale' : feeds.stale ? 'warn' : 'ok');
  cls(f.el, 'stale', feeds.allStale);
  if (feeds.allStale) {
    text(f.staleNote, i18n.t('stale_panel', { time: i18n.time(feeds.staleSince, true) }));
    f.staleNote.hidden = false;
  } else if (!f.staleNote.hidden) {
    f.staleNote.hidden = true;
  }
}

/** The newest receive time among entities of `kinds` (NaN if none yet). */
export function newestOf(replica, kinds) {
  let newest = NaN;
  for (const k of kinds) {
    const t = replica.newestRx.get(k);
    if (Number.isFinite(t) && !(newest >= t)) newest = t;
  }
  return newest;
}
