// Emergency lines 112 / 119: today's figures per line (received, share
// answered within 15 s and 20 s against the 90 % / 95 % targets, waiting now,
// open), the live queue of open calls with a running timer since received,
// coloured against the answer and dispatch targets, and today's calls by
// category. Options: `sections` (any of lines, queue, categories) and
// `queue` ("all", "desk": not yet dispatched, "field": units working).

import { h, text, sev, attr, keyed, cls } from '../dom.js';
import { frame, freshness, newestOf } from './frame.js';
import { ANSWER, answerSeverity, dispatchSeverity, shareSeverity, prioritySeverity, receivedAt } from '../targets.js';

const LINES = ['112', '119'];
const DESK = new Set(['received', 'answered', 'classified']);
/** Rows never exceed this, whatever the panel height (bounded DOM). */
const MAX_ROWS = 40;

export function create(el, { replica, i18n, options, layout, invalidate }) {
  const sections = options.sections || ['lines', 'queue', 'categories'];
  const which = options.queue || 'all';
  const title = which === 'desk' ? 'calls_title_desk' : which === 'field' ? 'calls_title_field' : 'calls_title';
  const f = frame(el, i18n.t(title));
  const parts = {};

  if (sections.includes('lines')) {
    const wrap = h('div', { class: 'lines' });
    parts.lines = LINES.map((line) => {
      const pct = h('div', { class: 'big-pct' });
      const side = h('div', { class: 'pct-side' }, h('span', null, i18n.t('answered_15')), h('span', null, i18n.t('target_ge', { v: `${ANSWER.fastPct} %` })));
      const pct20 = h('span', { class: 'value' });
      const sub = h('div', { class: 'line-sub' }, h('span', { class: 'label' }, i18n.t('answered_20')), pct20, h('span', { class: 'label' }, `(≥ ${ANSWER.slowPct} %)`));
      const stat = (label) => {
        const v = h('span', { class: 'value' });
        return [h('div', { class: 'stat' }, v, h('span', { class: 'label' }, i18n.t(label))), v];
      };
      const [sReceived, vReceived] = stat('received_today');
      const [sWaiting, vWaiting] = stat('waiting_now');
      const [sOpen, vOpen] = stat('open_now');
      const [sAband, vAband] = stat('abandoned');
      const since = h('span', { class: 'line-since' });
      const block = h(
        'div',
        { class: 'line-block', 'data-line': line },
        h('div', { class: 'line-head' }, h('span', { class: 'chip line-chip' }, line), h('span', { class: 'line-name' }, i18n.t(`line_${line}`).replace(/^\d+\s*/, '')), since),
        h('div', { class: 'line-main' }, pct, side),
        sub,
        h('div', { class: 'stats' }, sReceived, sWaiting, sOpen, sAband),
      );
      wrap.append(block);
      return { line, block, pct, pct20, vReceived, vWaiting, vOpen, vAband, since, sWaiting };
    });
    f.body.append(wrap);
  }

  if (sections.includes('categories')) {
    const list = h('div', { class: 'bars' });
    const section = h('div', { class: 'section categories' }, h('h3', { class: 'section-title' }, i18n.t('categories_title')), list);
    parts.categories = { section, list };
    f.body.append(section);
  }

  if (sections.includes('queue')) {
    const count = h('span', { class: 'count' });
    const list = h('div', { class: 'queue-list' });
    const more = h('div', { class: 'more', hidden: true });
    const empty = h('div', { class: 'empty', hidden: true }, i18n.t('queue_empty'));
    const section = h('div', { class: 'section queue' }, h('h3', { class: 'section-title' }, i18n.t('queue_title'), count), list, empty, more);
    parts.queue = { section, list, more, empty, count, capacity: 6 };
    f.body.append(section);
    // Rows that fit: measured from the list's height, never by scrolling.
    const ro = new ResizeObserver(() => {
      const rowPx = layout.font_px * 3.9;
      parts.queue.capacity = Math.max(1, Math.min(MAX_ROWS, Math.floor((list.clientHeight + 2) / rowPx)));
      invalidate('call');
    });
    ro.observe(list);
  }

  function counters() {
    const m = replica.get('counters');
    return (replica.city && m.get(replica.city)?.value) || m.values().next().value?.value || null;
  }

  function renderLines(open, c, now) {
    for (const p of parts.lines) {
      const lc = (c && c.lines && c.lines[p.line]) || null;
      const decided = lc ? lc.answered + lc.abandoned : 0;
      const pct15 = decided ? (100 * lc.answered_within_15s) / decided : null;
      const pct20 = decided ? (100 * lc.answered_within_20s) / decided : null;
      text(p.pct, pct15 == null ? '–' : i18n.pct(pct15));
      sev(p.pct, shareSeverity(pct15, ANSWER.fastPct));
      text(p.pct20, pct20 == null ? '–' : i18n.pct(pct20));
      sev(p.pct20, shareSeverity(pct20, ANSWER.slowPct));
      text(p.vReceived, lc ? i18n.num(lc.received) : '0');
      text(p.vAband, lc ? i18n.num(lc.abandoned) : '0');
      let waiting = 0;
      let openN = 0;
      for (const call of open) {
        if (call.line !== p.line) continue;
        openN++;
        if (!call.stages.answered) waiting++;
      }
      text(p.vWaiting, i18n.num(waiting));
      sev(p.sWaiting, waiting > 0 ? 'warn' : 'none');
      text(p.vOpen, i18n.num(openN));
      const feeds = replica.feeds('calls', p.line);
      cls(p.block, 'stale', feeds.allStale);
      text(p.since, feeds.allStale ? i18n.t('since', { time: i18n.time(feeds.staleSince, true) }) : '');
    }
  }

  function renderCategories(c) {
    const cats = Object.entries((c && c.categories) || {}).sort((a, b) => b[1] - a[1]);
    const max = cats.reduce((m, [, n]) => Math.max(m, n), 1);
    keyed(
      parts.categories.list,
      cats.slice(0, 8),
      ([cat]) => cat,
      () => {
        const fill = h('div', { class: 'bar-fill' });
        return h('div', { class: 'bar-row' }, h('span', { class: 'bar-label' }), h('div', { class: 'bar-track' }, fill), h('span', { class: 'bar-value' }));
      },
      (row, [cat, n]) => {
        text(row.children[0], i18n.t(`cat.${cat}`));
        row.children[1].firstChild.style.width = `${Math.round((100 * n) / max)}%`;
        text(row.children[2], i18n.num(n));
      },
    );
  }

  function timerOf(call, now) {
    const age = (now - receivedAt(call)) / 1000;
    if (!call.stages.answered) return { age, sev: answerSeverity(age) };
    if (!call.stages.dispatched && call.category !== 'prank') return { age, sev: dispatchSeverity(age, call.priority || 3) };
    return { age, sev: 'none' };
  }

  function renderQueue(open, now) {
    const q = parts.queue;
    let calls = open;
    if (which === 'desk') calls = calls.filter((c) => DESK.has(c.stage));
    else if (which === 'field') calls = calls.filter((c) => !DESK.has(c.stage));
    // Waiting calls first (longest wait on top), then by priority, then oldest first.
    const rows = calls.slice().sort((a, b) => {
      const wa = a.stages.answered ? 1 : 0;
      const wb = b.stages.answered ? 1 : 0;
      if (wa !== wb) return wa - wb;
      const pa = a.priority || 5;
      const pb = b.priority || 5;
      if (pa !== pb) return pa - pb;
      return receivedAt(a) - receivedAt(b);
    });
    const shown = rows.slice(0, q.capacity).map((c) => ({ c, t: timerOf(c, now) }));
    text(q.count, rows.length ? ` (${i18n.num(rows.length)})` : '');
    q.empty.hidden = rows.length > 0;
    q.more.hidden = rows.length <= shown.length;
    if (!q.more.hidden) text(q.more, i18n.t('more', { n: rows.length - shown.length }));
    keyed(q.list, shown, (r) => r.c.city + '/' + r.c.call_id, makeRow, (row, r) => updateRow(row, r));
  }

  function makeRow() {
    const line = h('span', { class: 'chip line-chip' });
    const prio = h('span', { class: 'chip prio' });
    const cat = h('span', { class: 'cat' });
    const stage = h('span', { class: 'stage' });
    const timer = h('span', { class: 'timer' });
    const where = h('span', { class: 'where' });
    const row = h('div', { class: 'call-row' }, h('div', { class: 'row-1' }, line, prio, cat, stage, timer), h('div', { class: 'row-2' }, where));
    row._ = { line, prio, cat, stage, timer, where };
    return row;
  }

  function updateRow(row, { c, t }) {
    const e = row._;
    attr(row, 'data-call', c.call_id);
    text(e.line, c.line);
    attr(e.line, 'data-line', c.line);
    text(e.prio, c.priority ? `P${c.priority}` : 'P?');
    sev(e.prio, c.priority ? prioritySeverity(c.priority) : 'none');
    text(e.cat, i18n.t(`cat.${c.category || 'unknown'}`));
    text(e.stage, i18n.t(`stage.${c.stage}`));
    attr(e.stage, 'data-stage', c.stage);
    text(e.timer, i18n.timer(t.age));
    sev(e.timer, t.sev);
    const where = (c.caller && c.caller.address) || i18n.t('no_location');
    const unit = c.unit ? ` · ${c.unit.toUpperCase()}` : c.agency ? ` · ${c.agency.toUpperCase()}` : '';
    text(e.where, where + unit);
    cls(row, 'p1', c.priority === 1);
  }

  function render({ now }) {
    const open = [];
    for (const { value } of replica.get('call').values()) if (value.open && (!replica.city || value.city === replica.city)) open.push(value);
    const c = counters();
    freshness(f, replica.feeds('calls'), i18n, now, newestOf(replica, ['call']));
    if (parts.lines) renderLines(open, c, now);
    if (parts.categories) renderCategories(c);
    if (parts.queue) renderQueue(open, now);
  }

  return { kinds: ['call', 'counters', 'feed', 'conn'], clock: true, render };
}
