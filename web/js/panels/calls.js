// Emergency lines 112 / 119: today's figures per line (received, the share
// answered within the answer standard's first target, waiting now, open),
// the EU 112 indicators per line in a small table under them (the other
// answered-within shares, mean answer time, mean of the slowest 10 %,
// abandon rate, prank + ghost share; indicators.js), the live queue of open
// calls with a running timer since received, coloured against the answer
// and dispatch targets, and today's calls by category. The shares are
// coloured against the server's answer targets (`/api/dispatch/targets`,
// asked once; targets.js's NENA ones until then or when that fails).
// Options: `sections` (any of lines, queue, categories) and `queue` ("all",
// "desk": not yet dispatched, "field": units working).

import { h, text, sev, attr, keyed, cls } from '../dom.js';
import { frame, freshness, newestOf } from './frame.js';
import { ANSWER_TARGETS, answerSeverity, dispatchSeverity, shareSeverity, prioritySeverity, receivedAt, serverTargets } from '../targets.js';
import { indicators, LINES, WITHIN_S } from '../indicators.js';

const DESK = new Set(['received', 'answered', 'classified']);
/** Rows never exceed this, whatever the panel height (bounded DOM). */
const MAX_ROWS = 40;

export function create(el, { replica, i18n, options, layout, invalidate }) {
  const sections = options.sections || ['lines', 'queue', 'categories'];
  const which = options.queue || 'all';
  const title = which === 'desk' ? 'calls_title_desk' : which === 'field' ? 'calls_title_field' : 'calls_title';
  const f = frame(el, i18n.t(title));
  const parts = {};

  /** The answer targets, `[{s, pct}]`: the server's once it answered. */
  let answerTargets = ANSWER_TARGETS;
  serverTargets().then((served) => {
    if (!served || !served.answer) return;
    answerTargets = served.answer;
    invalidate('counters');
  });
  const targetOf = (s) => answerTargets.find((x) => x.s === s)?.pct ?? null;
  const pctText = (v) => `${i18n.num(v, Number.isInteger(v) ? 0 : 1)} %`;

  if (sections.includes('lines')) {
    const wrap = h('div', { class: 'lines' });
    parts.lines = LINES.map((line) => {
      const pct = h('div', { class: 'big-pct' });
      const headLabel = h('span');
      const headTarget = h('span');
      const side = h('div', { class: 'pct-side' }, headLabel, headTarget);
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
        h('div', { class: 'stats' }, sReceived, sWaiting, sOpen, sAband),
      );
      wrap.append(block);
      return { line, block, pct, headLabel, headTarget, vReceived, vWaiting, vOpen, vAband, since, sWaiting };
    });
    f.body.append(wrap);

    // The EU 112 indicators: a column per figure, a row per line. The first
    // two columns are the answered-within shares the blocks above do not
    // show; their heads carry the target when the standard has one.
    const col = (k) => {
      const top = h('span', { class: 'eu-top' });
      const sub = h('span', { class: 'eu-sub' });
      if (k) {
        text(top, i18n.t(`eu_${k}`));
        text(sub, i18n.t(`eu_${k}_2`));
      }
      return { th: h('th', { scope: 'col' }, top, sub), top, sub };
    };
    const heads = { shares: [col(), col()], mean: col('mean'), slowest: col('slowest'), abandon: col('abandon'), prank: col('prank') };
    const headRow = h('tr', null, h('th', { class: 'eu-corner' }), ...[...heads.shares, heads.mean, heads.slowest, heads.abandon, heads.prank].map((c) => c.th));
    const rows = LINES.map((line) => {
      const cells = Array.from({ length: 6 }, () => h('td'));
      const tr = h('tr', { 'data-line': line }, h('th', { scope: 'row' }, h('span', { class: 'chip line-chip', 'data-line': line }, line)), ...cells);
      return { line, tr, shares: cells.slice(0, 2), mean: cells[2], slowest: cells[3], abandon: cells[4], prank: cells[5] };
    });
    const table = h('table', { class: 'eu-table' }, h('thead', null, headRow), h('tbody', null, ...rows.map((r) => r.tr)));
    parts.eu = { heads, rows };
    f.body.append(table);
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
    // The headline share: the standard's first target the counters count (NENA 15 s, NFPA 10 s).
    const headS = (answerTargets.find((x) => WITHIN_S.includes(x.s)) || { s: WITHIN_S[1] }).s;
    const otherS = WITHIN_S.filter((s) => s !== headS);
    const headTarget = targetOf(headS);
    const eu = parts.eu;
    otherS.forEach((s, i) => {
      const target = targetOf(s);
      text(eu.heads.shares[i].top, i18n.t('within_s', { s }));
      text(eu.heads.shares[i].sub, target == null ? '' : `≥ ${pctText(target)}`);
    });
    for (const [i, p] of parts.lines.entries()) {
      const lc = (c && c.lines && c.lines[p.line]) || null;
      const k = indicators(lc ? [lc] : []);
      const row = eu.rows[i];
      const headPct = k.within[headS];
      text(p.pct, i18n.pct(headPct));
      sev(p.pct, shareSeverity(headPct, headTarget));
      text(p.headLabel, i18n.t('answered_within', { s: headS }));
      text(p.headTarget, headTarget == null ? '' : i18n.t('target_ge', { v: pctText(headTarget) }));
      otherS.forEach((s, j) => {
        const v = k.within[s];
        text(row.shares[j], i18n.pct(v));
        sev(row.shares[j], shareSeverity(v, targetOf(s)));
      });
      text(row.mean, i18n.age(k.meanAnswerS ?? NaN));
      text(row.slowest, i18n.age(k.slowestS ?? NaN));
      text(row.abandon, i18n.pct(k.abandonPct));
      text(row.prank, i18n.pct(k.prankGhostPct));
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
      cls(row.tr, 'stale', feeds.allStale);
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
