// The four queues: ringing, waiting for dispatch, active, recently closed.
// Each is a listbox; a row shows the line, call id, priority, category,
// operator, the stage timer (every second, from the server's clock) and,
// for a ringing or waiting call, its target clock coloured and worded
// against the answer or dispatch target (HAMPIR / LEWAT; the row carries it
// as `data-sla`), a MUNGKIN GANDA badge with the count when the call may
// repeat open calls (`possible_duplicates`), the incident it was merged into
// as a chip (calls of one incident carry the same one), plus any action
// pending on the call. Rows are keyed by call, so arrivals insert rows
// around a steady selection and focus.

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { prioritySeverity } from '../targets.js';
import { TARGETS } from './targets.js';
import { QUEUES, callKey, timerOf } from './model.js';
import { pendingView } from './actions.js';
import { focusQueue } from './keys.js';

/** Rows drawn per queue at most (the keys still reach every call). */
const MAX_ROWS = 300;

export function create(el, { con, replica, i18n, t }) {
  const parts = QUEUES.map((q, qi) => {
    const count = h('span', { class: 'count' });
    const headId = `queue-${q}-title`;
    const head = h('header', { class: 'queue-head' }, h('kbd', { class: 'qkey' }, String(qi + 1)), h('h2', { id: headId, class: 'panel-title' }, t(`queues.${q}`)), count);
    const list = h('div', { class: 'queue-list', role: 'listbox', tabindex: '0', 'aria-labelledby': headId });
    const empty = h('div', { class: 'empty', hidden: true }, t(`queue_empty.${q}`));
    const more = h('div', { class: 'more', hidden: true });
    const section = h('section', { class: 'queue', 'data-queue': q }, head, list, empty, more);
    el.append(section);
    list.addEventListener('click', (e) => pick(qi, e, false));
    list.addEventListener('dblclick', (e) => pick(qi, e, true));
    list.addEventListener('focus', () => {
      if (con.focusQueue !== qi) {
        con.focusQueue = qi;
        con.invalidate('dispatch');
      }
    });
    con.el.queues[qi] = list;
    return { q, section, list, empty, more, count };
  });

  /** A click selects the row's call and focuses its queue; a double click opens the detail. */
  function pick(qi, e, open) {
    const row = e.target.closest('.qrow');
    const call = row && replica.get('call').get(row.dataset.key)?.value;
    if (!call) return;
    con.select(call);
    focusQueue(con, qi, true);
    if (open) con.el.timeline?.focus({ preventScroll: true });
  }

  function makeRow() {
    const line = h('span', { class: 'chip line-chip' });
    const id = h('span', { class: 'cid' });
    const prio = h('span', { class: 'chip prio' });
    const goal = h('span', { class: 'goal' });
    const timer = h('span', { class: 'timer' });
    const tag = h('span', { class: 'sevtag' });
    const cat = h('span', { class: 'cat' });
    const dup = h('span', { class: 'dupbadge', 'data-sev': 'watch' });
    const inc = h('span', { class: 'incchip' });
    const op = h('span', { class: 'op' });
    const info = h('span', { class: 'info' });
    const pend = h('span', { class: 'pend' });
    const row = h(
      'div',
      { class: 'qrow', role: 'option' },
      h('div', { class: 'r1' }, line, id, prio, h('span', { class: 'spacer' }), goal, timer, tag),
      h('div', { class: 'r2' }, cat, dup, inc, op, info),
      pend,
    );
    row._ = { line, id, prio, goal, timer, tag, cat, dup, inc, op, info, pend };
    return row;
  }

  function infoOf(c, q) {
    if (q === 'ringing') return (c.caller && c.caller.address) || '';
    if (q === 'closed') return c.disposition ? t(`disposition.${c.disposition}`) : i18n.t(`stage.${c.stage}`);
    if (q === 'active') {
      if (!c.units || !c.units.length) return { text: t('no_units'), sev: 'warn' };
      return c.units.map((u) => `${u.unit.toUpperCase()} ${i18n.t(`unit_status.${u.stage}`)}`).join(' · ');
    }
    return i18n.t(`stage.${c.stage}`);
  }

  function updateRow(row, { c, q, now, selected }) {
    const e = row._;
    const key = callKey(c);
    attr(row, 'id', `qrow-${q}-${key.replace('/', '_')}`);
    attr(row, 'data-key', key);
    attr(row, 'data-call', c.call_id);
    attr(row, 'aria-selected', selected ? 'true' : 'false');
    cls(row, 'selected', selected);
    cls(row, 'p1', c.priority === 1 && c.open);
    text(e.line, c.line);
    attr(e.line, 'data-line', c.line);
    text(e.id, c.call_id);
    text(e.prio, c.priority ? `P${c.priority}` : 'P?');
    sev(e.prio, c.priority ? prioritySeverity(c.priority) : 'none');
    const tm = timerOf(c, q, now);
    attr(row, 'data-sla', tm.kind === 'stage' ? null : tm.sev);
    text(e.timer, i18n.timer(tm.stageS));
    // The colour goes to the clock held to the target: a ringing call's timer, a waiting call's "since answered / target".
    sev(e.timer, tm.kind === 'answer' ? tm.sev : 'none');
    attr(
      e.timer,
      'title',
      tm.kind === 'answer'
        ? t('timer_answer', { amber: TARGETS.answer.amberS, red: TARGETS.answer.redS })
        : tm.kind === 'dispatch'
          ? t('timer_dispatch', { clock: i18n.timer(tm.clockS), p: c.priority || '?', target: tm.target })
          : t('timer_stage'),
    );
    // The dispatch clock runs from the answer; the stage timer from the stage (a classification restarts it).
    const goal = tm.kind === 'dispatch' ? `${i18n.timer(tm.clockS)}/${i18n.timer(tm.target)}` : '';
    text(e.goal, goal);
    sev(e.goal, goal ? tm.sev : null);
    const word = tm.sev === 'crit' ? t('sev_crit') : tm.sev === 'warn' ? t('sev_warn') : '';
    text(e.tag, word);
    sev(e.tag, word ? tm.sev : null);
    text(e.cat, c.category ? i18n.t(`cat.${c.category}`) : t('unclassified'));
    cls(e.cat, 'unknown', !c.category);
    const dups = c.possible_duplicates || [];
    attr(e.dup, 'hidden', dups.length ? null : '');
    text(e.dup, dups.length ? t('dup_badge', { n: dups.length }) : '');
    attr(e.dup, 'title', dups.length ? t('dup_badge_hint', { list: dups.join(', ') }) : null);
    attr(row, 'data-dups', dups.length || null);
    attr(e.inc, 'hidden', c.incident_id ? null : '');
    text(e.inc, c.incident_id ? t('inc_chip', { id: c.incident_id }) : '');
    attr(e.inc, 'title', c.incident_id ? t('inc_chip_hint', { id: c.incident_id }) : null);
    text(e.op, c.operator || t('no_operator'));
    cls(e.op, 'unknown', !c.operator);
    const info = infoOf(c, q);
    text(e.info, typeof info === 'string' ? info : info.text);
    sev(e.info, typeof info === 'string' ? null : info.sev);
    const pending = con.actions.forCall(c.call_id);
    const view = pending.length ? pendingView(t, pending[pending.length - 1]) : null;
    text(e.pend, view ? view.text : '');
    sev(e.pend, view ? view.sev : null);
  }

  function render({ now }) {
    const queues = con.queues();
    const selKey = con.sel ? con.sel.key : null;
    for (const [qi, p] of parts.entries()) {
      const calls = queues[p.q];
      const shown = calls.slice(0, MAX_ROWS).map((c) => ({ c, q: p.q, now, selected: callKey(c) === selKey }));
      keyed(p.list, shown, (r) => callKey(r.c), makeRow, updateRow);
      text(p.count, i18n.num(calls.length));
      p.empty.hidden = calls.length > 0;
      p.more.hidden = calls.length <= MAX_ROWS;
      if (!p.more.hidden) text(p.more, i18n.t('more', { n: calls.length - MAX_ROWS }));
      cls(p.section, 'focused', con.focusQueue === qi);
      const selRow = selKey ? p.list.__keyed.get(selKey) : null;
      attr(p.list, 'aria-activedescendant', selRow ? selRow.id : null);
      if (selRow && con.reveal && con.focusQueue === qi) selRow.scrollIntoView({ block: 'nearest' });
    }
    con.reveal = false;
  }

  return { kinds: ['call', 'dispatch', 'pending'], clock: true, render };
}
