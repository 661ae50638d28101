// The pieces every screen's status strip shows (the wall's status panel, the
// dispatcher console's top bar): the Kendali brand, the connection pill
// ("TERHUBUNG" / "menyambung ulang · percobaan 3") and the server's clock
// and date in WIB. Their look is in shell.css.

import { h, text, sev } from '../dom.js';

/** The Kendali mark and name, with `subtitle` under the name. */
export function brand(subtitle) {
  const mark = h('div', { class: 'brand-mark', 'aria-hidden': 'true' }, 'K');
  return h('div', { class: 'brand' }, mark, h('div', { class: 'brand-text' }, h('strong', null, 'KENDALI'), h('span', null, subtitle)));
}

/**
 * The connection pill and the clock, for the strip `root`: `{conn, time,
 * render(now)}`. `render` writes the shell's connection state (also as
 * `root.dataset.conn`: the pill's dot blinks while it is not live) and the
 * server's time `now`; call it on every clock second and connection change.
 */
export function liveParts(root, { shell, i18n }) {
  const connText = h('span', { class: 'conn-text' });
  const conn = h('div', { class: 'conn', 'data-role': 'conn' }, h('span', { class: 'dot' }), connText);
  const clock = h('span', { class: 'clock' });
  const date = h('div', { class: 'date' });
  const time = h('div', { class: 'time' }, h('div', { class: 'clock-row' }, clock, h('span', { class: 'zone' }, i18n.t('wib'))), date);

  function render(now) {
    const c = shell.conn;
    root.dataset.conn = c.state;
    sev(conn, c.state === 'live' ? 'ok' : 'warn');
    const attempt = c.state === 'reconnecting' && c.attempt > 1 ? ` · ${i18n.t('conn_attempt', { n: c.attempt })}` : '';
    const words = { live: 'conn_live', connecting: 'conn_connecting', replay: 'conn_replay' };
    text(connText, words[c.state] ? i18n.t(words[c.state]) : i18n.t('conn_reconnecting') + attempt);
    text(clock, i18n.clock(now));
    text(date, i18n.date(now));
  }

  return { conn, time, render };
}
