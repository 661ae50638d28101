// The selected call in full: line, callback number, the caller's location,
// classification (category, priority, triage, protocol), disposition,
// incident, its possible duplicates (each a button that selects that call;
// `g` reaches them from the keyboard, with the M / K commands beside),
// operator, answer and dispatch times, the units on the call with their
// stage and time in it, the actions pending on it, buttons for the mouse,
// and the timeline of every event (`GET /api/calls/{city}/{call_id}`, read
// again whenever the call's update arrives; an open call without a position
// says that the map beside picks it: a click, or `p`). Enter focuses the timeline
// (↑/↓ scroll it); Esc goes back to the queue. The recommended units are a
// panel of their own (recommendations.js).

import { h, text, attr, sev, cls, keyed } from '../dom.js';
import { prioritySeverity } from '../targets.js';
import { unitIsStale, unitStaleLimit } from './targets.js';
import { ms, stageStart, queueOf } from './model.js';
import { pendingView } from './actions.js';
import { jumpTo } from './keys.js';

/** A position as dispatchers read it out (decimal points whatever the language: it goes to the radio and the map). */
const coords = (p) => `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}`;

/** The buttons, with the command each one starts; answer and call back run at once. */
const BUTTONS = [
  ['answer', 'A', true],
  ['classify', 'C '],
  ['locate', 'L '],
  ['note', 'N '],
  ['dispatch', 'D '],
  ['reassign', 'R '],
  ['cancel_unit', 'X '],
  ['transfer', 'T '],
  ['close', 'Z '],
  ['callback', 'CB', true],
  ['merge', 'M '],
  ['keep_apart', 'K '],
];

export function create(el, { con, i18n, t, me }) {
  const may = me.may || {};
  const title = h('h2', { class: 'panel-title' }, t('detail_title'));
  const none = h('div', { class: 'empty' }, t('detail_none'));
  // Header: who and where in the lifecycle.
  const line = h('span', { class: 'chip line-chip' });
  const cid = h('span', { class: 'd-cid' });
  const prio = h('span', { class: 'chip prio' });
  const stage = h('span', { class: 'd-stage' });
  const timer = h('span', { class: 'timer' });
  const gone = h('div', { class: 'd-gone', 'data-sev': 'warn', hidden: true }, t('detail_gone'));
  const head = h('div', { class: 'd-head' }, line, cid, prio, h('span', { class: 'spacer' }), stage, timer);
  // Fields.
  const fields = h('dl', { class: 'd-fields' });
  const field = (label) => {
    const dd = h('dd');
    fields.append(h('dt', null, label), dd);
    return dd;
  };
  const f = {
    line: field(t('f_line')),
    callback: field(t('f_callback')),
    location: field(t('f_location')),
    cls: field(t('f_class')),
    disposition: field(t('f_disposition')),
    incident: field(t('f_incident')),
    dups: field(t('f_dups')),
    operator: field(t('f_operator')),
    times: field(t('f_times')),
    units: field(t('f_units')),
  };
  // Possible duplicates: a button per call, then the commands that settle them.
  const dupList = h('span', { class: 'd-duplist', role: 'group', 'aria-label': t('f_dups') });
  const dupNone = h('span', null, t('none'));
  const dupHint = h('span', { class: 'd-duphint' });
  f.dups.append(dupList, dupNone, dupHint);
  dupList.addEventListener('click', (e) => {
    const b = e.target.closest('button.dup');
    const call = b && con.findCall(b.dataset.dup);
    if (call) jumpTo(con, call);
  });
  con.el.dups = dupList;
  // The location as known, and for an open call without one, how to pick it on the map.
  const locText = h('span', { class: 'd-loc' });
  const locHint = h('span', { class: 'd-lochint' });
  f.location.append(locText, locHint);
  const unitList = h('div', { class: 'd-units' });
  const unitNone = h('span', null, t('none'));
  f.units.append(unitList, unitNone);
  const pend = h('div', { class: 'd-pending' });
  const buttons = h('div', { class: 'd-buttons', hidden: !may.dispatch });
  for (const [action, cmd, direct] of BUTTONS) {
    const b = h('button', { type: 'button', class: 'act', 'data-action': action }, t(`btn.${action}`));
    b.addEventListener('click', () => {
      if (direct) {
        con.run(cmd);
        return;
      }
      con.el.input.value = cmd;
      con.el.input.focus();
    });
    buttons.append(b);
  }
  // Timeline.
  const tlBody = h('tbody');
  const tlNote = h('div', { class: 'd-tl-note' });
  const tlHead = h('tr', null, ...['tl_time', 'tl_type', 'tl_who', 'tl_unit', 'tl_note'].map((k) => h('th', null, t(k, { zone: i18n.t('wib') }))));
  const scroller = h('div', { class: 'd-timeline', tabindex: '-1', 'aria-label': t('timeline') }, h('table', null, h('thead', null, tlHead), tlBody), tlNote);
  const body = h('div', { class: 'd-body', hidden: true }, head, gone, fields, pend, buttons, h('h3', { class: 'd-sub' }, t('timeline')), scroller);
  el.append(h('header', { class: 'panel-head' }, title), none, body);
  con.el.detail = el;
  con.el.timeline = scroller;

  const dash = t('none');
  const hidden = may.personal_data ? dash : t('hidden');

  function renderFields(c, now) {
    text(line, c.line);
    attr(line, 'data-line', c.line);
    text(cid, c.call_id);
    text(prio, c.priority ? `P${c.priority}` : 'P?');
    sev(prio, c.priority ? prioritySeverity(c.priority) : 'none');
    text(stage, i18n.t(`stage.${c.stage}`));
    attr(stage, 'data-stage', c.stage);
    text(timer, i18n.timer((now - stageStart(c)) / 1000));
    text(f.line, i18n.t(`line_${c.line}`));
    text(f.callback, c.callback || hidden);
    const where = c.caller ? [coords(c.caller), c.caller.address].filter(Boolean).join(' · ') : hidden;
    text(locText, where);
    const unlocated = !(c.caller && Number.isFinite(c.caller.lat) && Number.isFinite(c.caller.lon));
    text(locHint, may.dispatch && c.open && unlocated && con.selectedCall() ? t('pick_detail') : '');
    const klass = [
      c.category ? i18n.t(`cat.${c.category}`) : t('unclassified'),
      c.priority ? `P${c.priority}` : null,
      c.triage ? `${t('f_triage')}: ${t(`triage.${c.triage}`)}` : null,
      c.protocol ? `${t('f_protocol')}: ${c.protocol}` : null,
    ];
    text(f.cls, klass.filter(Boolean).join(' · '));
    text(f.disposition, c.disposition ? t(`disposition.${c.disposition}`) : dash);
    text(f.incident, c.incident_id || dash);
    renderDups(c, now);
    text(f.operator, c.operator || dash);
    const secs = (v) => (v == null ? '–' : t('seconds', { v: i18n.num(v, 0) }));
    text(f.times, `${secs(c.answer_s)} · ${secs(c.dispatch_s)}`);
    unitNone.hidden = !!(c.units && c.units.length);
    keyed(
      unitList,
      c.units || [],
      (u) => u.unit,
      () => h('div', { class: 'd-unit' }, h('span', { class: 'uid' }), h('span', { class: 'ustatus' }), h('span', { class: 'uage' }), h('span', { class: 'sevtag', 'data-sev': 'warn' })),
      (row, u) => {
        const [id, st, age, tag] = row.children;
        const ageS = (now - ms(u.since)) / 1000;
        const stale = unitIsStale(u.stage, ageS);
        text(id, u.unit.toUpperCase());
        text(st, `${i18n.t(`unit_status.${u.stage}`)} ${i18n.time(ms(u.since))}`);
        text(age, i18n.timer(ageS));
        cls(row, 'stale-unit', stale);
        text(tag, stale ? t('unit_stale') : '');
        attr(tag, 'title', stale ? t('unit_stale_hint', { limit: i18n.timer(unitStaleLimit(u.stage)) }) : null);
      },
    );
    keyed(
      pend,
      con.actions.forCall(c.call_id),
      (p) => p.action_id,
      () => h('span', { class: 'pchip' }),
      (chip, p) => {
        const v = pendingView(t, p);
        text(chip, v.text);
        sev(chip, v.sev);
      },
    );
  }

  function renderDups(c, now) {
    const ids = c.possible_duplicates || [];
    dupNone.hidden = ids.length > 0;
    keyed(
      dupList,
      ids,
      (id) => id,
      () => h('button', { type: 'button', class: 'dup', 'data-sev': 'watch' }),
      (b, id) => {
        const other = con.findCall(id);
        attr(b, 'data-dup', id);
        b.disabled = !other;
        // Where the other call is, in words (no units: they belong to that call's own detail).
        const where = other ? [i18n.t(`stage.${other.stage}`), other.category ? i18n.t(`cat.${other.category}`) : null].filter(Boolean).join(' · ') : t('dup_gone');
        text(b, `↔ ${id} · ${where}`);
        const q = other ? queueOf(other, now) : null;
        attr(b, 'title', other ? `${t('dup_hint_select', { call: id })} · ${q ? t(`queues.${q}`) : ''}` : t('dup_gone'));
      },
    );
    const hint = !ids.length ? '' : ids.length === 1 ? t('dup_cmds_one', { call: ids[0] }) : t('dup_cmds');
    text(dupHint, hint);
    cls(f.dups, 'has-dups', ids.length > 0);
  }

  /** The words after the event's type: what the event set, then its note. */
  function what(ev) {
    const bits = [];
    if (ev.category) bits.push(i18n.t(`cat.${ev.category}`));
    if (ev.priority) bits.push(`P${ev.priority}`);
    if (ev.triage) bits.push(t(`triage.${ev.triage}`));
    if (ev.protocol) bits.push(ev.protocol);
    if (ev.caller) bits.push([coords(ev.caller), ev.caller.address].filter(Boolean).join(' · '));
    if (ev.agency) bits.push(ev.agency);
    if (ev.disposition) bits.push(t(`disposition.${ev.disposition}`));
    if (ev.related_call) bits.push(`↔ ${ev.related_call}`);
    if (ev.incident_id) bits.push(ev.incident_id);
    if (ev.callback) bits.push(ev.callback);
    if (ev.note) bits.push(ev.note);
    return bits.join(' — ');
  }

  let shownEvents = null;
  function renderTimeline(d) {
    if (d.events === shownEvents) return;
    shownEvents = d.events;
    const atEnd = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
    keyed(
      tlBody,
      d.events || [],
      (ev) => ev.event_id,
      () => h('tr', null, h('td', { class: 'tl-time' }), h('td', { class: 'tl-type' }), h('td'), h('td'), h('td', { class: 'tl-note' })),
      (tr, ev) => {
        const [time, type, who, unit, note] = tr.children;
        text(time, i18n.clock(ms(ev.ts)));
        // `keep_apart` publishes `merged` without an incident: the calls were kept apart.
        text(type, ev.type === 'merged' && !ev.incident_id && ev.related_call ? t('ev.kept_apart') : t(`ev.${ev.type}`));
        attr(type, 'data-type', ev.type);
        text(who, ev.operator || '');
        text(unit, ev.unit ? ev.unit.toUpperCase() : '');
        text(note, what(ev));
      },
    );
    if (atEnd) scroller.scrollTop = scroller.scrollHeight;
  }

  function render({ now }) {
    const d = con.detail;
    const live = con.selectedCall();
    const c = live || (d && d.call);
    none.hidden = !!con.sel;
    body.hidden = !con.sel;
    if (!con.sel) return;
    gone.hidden = !!live || !c;
    if (c) renderFields(c, now);
    else text(cid, con.sel.call_id);
    renderTimeline(d);
    const note = d.error ? t('detail_error', { error: d.error }) : d.loading && !d.events ? t('detail_loading') : d.events && !d.events.length ? t('tl_empty') : '';
    text(tlNote, note);
    sev(tlNote, d.error ? 'crit' : null);
  }

  return { kinds: ['call', 'dispatch', 'detail', 'pending'], clock: true, render };
}
