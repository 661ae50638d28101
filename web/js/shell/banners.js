// Banners over the screen: the connection banner ("Koneksi ke server
// terputus: menyambung ulang...") whenever the socket is not live, and,
// for screens that ask for it, a stale banner when every feed of the
// families they show has stopped ("DATA TERHENTI sejak 14:02 WIB"). The wall
// leaves the stale banner off: each of its panels says it for its own feeds.
// The root element carries `data-conn` for styles.

import { h, text } from '../dom.js';
import { mergeFeeds } from '../replica.js';

export class Banners {
  /** `staleFamilies`: feed families (`atcs`, `calls`, ...) whose stop the stale banner reports. */
  constructor(root, { shell, replica, i18n, staleFamilies = [] }) {
    this.root = root;
    this.shell = shell;
    this.replica = replica;
    this.i18n = i18n;
    this.staleFamilies = staleFamilies;
    this.conn = h('div', { class: 'conn-banner', hidden: true });
    root.append(this.conn);
    if (staleFamilies.length) {
      this.stale = h('div', { class: 'stale-banner', hidden: true });
      root.append(this.stale);
    }
  }

  draw() {
    const { i18n } = this;
    const c = this.shell.conn;
    // A replay has no connection to lose (its banner is replay.js's).
    const down = c.state !== 'live' && c.state !== 'replay';
    if (this.conn.hidden !== !down) this.conn.hidden = !down;
    this.root.dataset.conn = c.state;
    if (down) {
      const attempt = c.attempt > 1 ? ` (${i18n.t('conn_attempt', { n: c.attempt })})` : '';
      const msg = c.state === 'connecting' ? i18n.t('conn_connecting') : i18n.t('conn_banner') + attempt;
      if (this.conn.textContent !== msg) this.conn.textContent = msg;
    }
    if (!this.stale) return;
    const feeds = mergeFeeds(...this.staleFamilies.map((f) => this.replica.feeds(f)));
    const stale = !down && feeds.allStale;
    if (this.stale.hidden !== !stale) this.stale.hidden = !stale;
    if (stale) text(this.stale, i18n.t('stale_panel', { time: i18n.time(feeds.staleSince, true) }));
  }
}
