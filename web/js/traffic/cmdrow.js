// One command as a row, the same wherever it shows (the opened junction's
// history, the commands in force): when it was issued, the junction (when
// asked), the action and its arguments, the reason, who issued it, its
// status in words (menunggu / diterapkan / ditolak: <alasan> / tidak
// dijawab, the last red and loud; a corridor's hold reads "hijau ditahan:
// selatan untuk AMB-01", Kendali's release of a hold "dilepas"), and its
// lease: the time left as a live `mm:ss` countdown (`<span
// data-countdown>`) while in force, else what became of it. The row
// carries `data-command`, `data-status` and `data-action`.

import { h, text, attr, sev, cls } from '../dom.js';
import { commandView, mmss } from './model.js';

const STATUS_SEV = { pending: 'info', applied: 'ok', rejected: 'warn', timed_out: 'crit' };

/** The status in words: "ditolak: <reason>", "diterapkan (jawaban terlambat)". */
export function statusText(c, t) {
  let s = c.status === 'rejected' && c.reason ? t('rejected_why', { reason: c.reason }) : t(`status.${c.status}`);
  if (c.late && c.status !== 'timed_out') s = t('late', { status: s });
  return s;
}

/** Kendali's own rules whose reverts release what a lease or a corridor held. */
const RELEASING_RULES = new Set(['rule:corridor', 'rule:lease']);

/** Whether `cmd` is Kendali releasing a hold (a revert by `rule:corridor` or `rule:lease`). */
export function isRelease(cmd) {
  return !!cmd && !!cmd.reverts && RELEASING_RULES.has(cmd.issued_by);
}

/**
 * What the command asks, in words: "+20 dtk timur", "rencana P3 · 30 mnt",
 * "hijau ditahan: selatan untuk AMB-01" (a corridor's `priority`), the
 * announcement's words; a revert adds which command it undoes, or
 * "dilepas" when Kendali's rules release a hold (a corridor's release reads
 * "dilepas: selatan untuk AMB-01").
 */
export function argsText(cmd, t, i18n) {
  if (!cmd) return '';
  const min = cmd.expires_in_s != null ? i18n.num(cmd.expires_in_s / 60, cmd.expires_in_s % 60 ? 1 : 0) : '–';
  const id = cmd.reverts ? String(cmd.reverts).slice(0, 8) : '';
  let s = '';
  if (cmd.action === 'priority') {
    const w = { approach: cmd.approach || '–', unit: cmd.unit || '–' };
    if (cmd.reverts) return isRelease(cmd) ? t('args_release', w) : `${t('args_release', w)} · ${t('reverts', { id })}`;
    return t('args_priority', w);
  }
  if (cmd.action === 'extend_green') s = t('args_extend', { s: i18n.num(cmd.seconds), approach: cmd.approach || '' });
  else if (cmd.action === 'set_plan') s = cmd.reverts ? t('args_plan_back', { plan: cmd.plan }) : t('args_plan', { plan: cmd.plan, min });
  else if (cmd.action === 'set_mode') s = cmd.reverts ? t('args_mode_back', { mode: t(`mode.${cmd.mode}`) }) : t('args_mode', { mode: t(`mode.${cmd.mode}`), min });
  else if (cmd.action === 'announce') s = cmd.message || cmd.template || '';
  if (cmd.reverts) s = `${s} · ${t(isRelease(cmd) ? 'released' : 'reverts', { id })}`;
  return s;
}

/** A new command row; `withJunction` adds the junction's name. */
export function makeCommandRow(withJunction) {
  const time = h('span', { class: 'cr-time' });
  const junction = withJunction ? h('span', { class: 'cr-junction' }) : null;
  const action = h('span', { class: 'cr-action' });
  const args = h('span', { class: 'cr-args' });
  const status = h('span', { class: 'cr-status' });
  const countdown = h('span', { class: 'cr-countdown' });
  const reason = h('span', { class: 'cr-reason' });
  const by = h('span', { class: 'cr-by' });
  const row = h(
    'div',
    { class: 'cmd-row' },
    h('div', { class: 'cr-1' }, time, action, args, status, countdown),
    h('div', { class: 'cr-2' }, junction, reason, by),
  );
  row._ = { time, junction, action, args, status, countdown, reason, by };
  return row;
}

/** Fills a command row from the entity `c` at `now`; `name(city, id)` gives a junction's name. */
export function fillCommandRow(row, c, { t, i18n, now, name }) {
  const e = row._;
  const v = commandView(c, now);
  const cmd = c.command;
  attr(row, 'data-command', c.command_id);
  attr(row, 'data-status', c.status);
  attr(row, 'data-lease', v.lease_state);
  sev(row, STATUS_SEV[c.status] || 'none');
  cls(row, 'timed-out', c.status === 'timed_out');
  text(e.time, i18n.time(v.at));
  if (e.junction) text(e.junction, name(c.city, c.intersection));
  text(e.action, cmd ? t(`act.${cmd.action}`) : '–');
  attr(row, 'data-action', cmd ? cmd.action : null);
  cls(row, 'release', isRelease(cmd));
  text(e.args, argsText(cmd, t, i18n));
  text(e.status, statusText(c, t));
  sev(e.status, STATUS_SEV[c.status] || 'none');
  attr(e.status, 'data-status', c.status);
  const inForce = v.lease_state === 'in_force';
  attr(e.countdown, 'data-countdown', inForce ? '' : null);
  attr(e.countdown, 'title', inForce ? t('lease_left', { t: mmss(v.remaining_s) }) : null);
  text(e.countdown, inForce ? mmss(v.remaining_s) : v.lease_state ? t(`lease.${v.lease_state}`) : '');
  text(e.reason, (cmd && cmd.reason) || '');
  text(e.by, cmd && cmd.issued_by ? t('by', { who: cmd.issued_by }) : '');
}
