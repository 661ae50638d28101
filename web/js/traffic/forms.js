// The small forms over the console, one at a time, for the opened junction:
// extend green (`e`: seconds, the suggestion's for that approach or 15, and
// a reason), set plan (`p`: plan, lease minutes, reason), set mode (`m`:
// mode, lease minutes, reason, and for flashing or off the junction's id
// typed as confirmation), an announcement (`n`: a template from the desk,
// reason), automatic mode on or off (`o`: reason), and a green corridor
// for an emergency unit (`g`: unit, minutes, reason; not tied to the opened
// junction); and the help overlay (`?`). Enter sends, Esc cancels; focus
// goes back where it was. A form stays open with the server's message when
// the server refuses; it closes on a 202, and the command (each of a
// corridor's) then shows pending until its entity comes.

import { h, text } from '../dom.js';
import { errorText } from './console.js';
import { corridorReason } from './model.js';

const MODES = ['adaptive', 'fixed', 'manual', 'flashing', 'off'];
/** Modes that stop the signals: the junction's id must be typed to confirm. */
const STOPPING = new Set(['flashing', 'off']);
const DEFAULT_EXTEND_S = 15;
/** A green corridor's hold per junction the form starts with, minutes, when the desk does not say (`corridor_s`). */
const DEFAULT_CORRIDOR_MIN = 5;

export class Forms {
  constructor({ con, root, t, i18n }) {
    this.con = con;
    this.t = t;
    this.i18n = i18n;
    this.layer = h('div', { class: 'overlay', hidden: true });
    // A click beside the form or help closes it, like Esc.
    this.layer.addEventListener('mousedown', (e) => {
      if (e.target === this.layer) this.close();
    });
    root.append(this.layer);
  }

  /** Closes whatever is open; focus goes back to where it was when it opened. */
  close() {
    const o = this.con.overlay;
    if (!o) return;
    this.con.overlay = null;
    this.layer.replaceChildren();
    this.layer.hidden = true;
    const back = o.returnTo && o.returnTo.isConnected ? o.returnTo : this.con.el.board;
    back?.focus({ preventScroll: true });
  }

  /** Shows `box` as the overlay of `kind`. */
  show(kind, box, focus) {
    const returnTo = this.con.overlay ? this.con.overlay.returnTo : document.activeElement;
    this.layer.replaceChildren(box);
    this.layer.hidden = false;
    this.con.overlay = { kind, el: box, returnTo: returnTo && returnTo !== document.body ? returnTo : null };
    (focus || box).focus({ preventScroll: true });
  }

  /** The key help. */
  help() {
    const t = this.t;
    const rows = t.raw('keys').map(([k, what]) => h('tr', null, h('th', { scope: 'row' }, h('kbd', null, k)), h('td', null, what)));
    const box = h('div', { class: 'dialog help', role: 'dialog', 'aria-modal': 'true', 'aria-label': t('help_title'), tabindex: '-1', 'data-overlay': 'help' }, h('h3', null, t('help_title')), h('table', null, h('tbody', null, ...rows)), h('p', { class: 'hint' }, t('help_close')));
    this.show('help', box);
  }

  /**
   * A form: `action` names it (`data-form`), `title`, `fields` (label,
   * element pairs), `submit(values)` resolving to `{status, body}`.
   */
  form(action, title, fields, submit, check) {
    const t = this.t;
    const error = h('p', { class: 'form-error', role: 'alert' });
    const send = h('button', { type: 'submit', class: 'send' }, t('f_send'));
    const cancel = h('button', { type: 'button', class: 'quiet' }, t('f_cancel'));
    const form = h(
      'form',
      { class: 'dialog', 'data-form': action, role: 'dialog', 'aria-modal': 'true', 'aria-label': title, novalidate: true },
      h('h3', null, title),
      ...fields.map(([label, input]) => h('label', { 'data-field': input.name }, h('span', null, label), input)),
      error,
      h('div', { class: 'buttons' }, send, cancel),
    );
    const values = () => Object.fromEntries(fields.map(([, input]) => [input.name, input.value]));
    cancel.addEventListener('click', () => this.close());
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.close();
      } else if (e.key === 'Enter' && e.target.tagName === 'SELECT') {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (send.disabled) return;
      const v = values();
      const bad = check(v);
      if (bad) {
        text(error, bad.message);
        form.elements[bad.field]?.focus();
        return;
      }
      send.disabled = true;
      text(error, t('f_sending'));
      const res = await submit(v);
      send.disabled = false;
      if (res.status >= 200 && res.status < 300) {
        if (this.con.overlay && this.con.overlay.el === form) this.close();
        return;
      }
      text(error, errorText(t, res));
    });
    const first = fields[0][1];
    this.show(action, form, first);
    if (first.select) first.select();
    return form;
  }

  /** Extend the selected approach's green. */
  extendGreen(j, approach) {
    const { t, con } = this;
    const max = con.limit('extend_max_s', 120);
    const sugg = (j.row ? j.row.suggestions : []).find((s) => s.approach === approach);
    const seconds = h('input', { name: 'seconds', type: 'number', min: 1, max, step: 1, value: String(sugg ? sugg.seconds : DEFAULT_EXTEND_S), inputmode: 'numeric' });
    const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', value: '' });
    this.form(
      'extend_green',
      t('form_title.extend_green', { name: j.name, approach }),
      [[t('l_seconds', { max }), seconds], [t('l_reason'), reason]],
      (v) => con.command('extend_green', { approach, seconds: Number(v.seconds), reason: v.reason.trim() }),
      (v) => {
        const s = Number(v.seconds);
        if (!(Number.isFinite(s) && s >= 1 && s <= max)) return { field: 'seconds', message: t('err_seconds', { max }) };
        return reasonCheck(t, v);
      },
    );
  }

  /** The lease minutes input, its default the desk's lease. */
  minutesInput() {
    const con = this.con;
    const maxMin = Math.floor(con.limit('lease_max_s', 7200) / 60);
    const def = Math.max(1, Math.round(con.limit('lease_default_s', 1800) / 60));
    return { maxMin, input: h('input', { name: 'minutes', type: 'number', min: 1, max: maxMin, step: 1, value: String(def), inputmode: 'numeric' }) };
  }

  /** Set the signal plan, leased. */
  setPlan(j) {
    const { t, con } = this;
    const plan = h('input', { name: 'plan', type: 'text', autocomplete: 'off', value: '', placeholder: j.row && j.row.plan ? j.row.plan : '' });
    const { maxMin, input: minutes } = this.minutesInput();
    const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', value: '' });
    this.form(
      'set_plan',
      t('form_title.set_plan', { name: j.name }),
      [[t('l_plan'), plan], [t('l_minutes', { max: maxMin }), minutes], [t('l_reason'), reason]],
      (v) => con.command('set_plan', { plan: v.plan.trim(), expires_in_s: Number(v.minutes) * 60, reason: v.reason.trim() }),
      (v) => (!v.plan.trim() ? { field: 'plan', message: t('err_plan') } : minutesCheck(t, v, maxMin) || reasonCheck(t, v)),
    );
  }

  /** Set the controller's mode, leased; flashing or off asks for the junction's id. */
  setMode(j) {
    const { t, con } = this;
    const mode = h('select', { name: 'mode' }, ...MODES.map((m) => h('option', { value: m }, t(`mode.${m}`))));
    const { maxMin, input: minutes } = this.minutesInput();
    const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', value: '' });
    const confirm = h('input', { name: 'confirm', type: 'text', autocomplete: 'off', value: '', spellcheck: 'false' });
    const form = this.form(
      'set_mode',
      t('form_title.set_mode', { name: j.name }),
      [[t('l_mode'), mode], [t('l_minutes', { max: maxMin }), minutes], [t('l_reason'), reason], [t('l_confirm', { id: j.id }), confirm]],
      (v) => {
        const body = { mode: v.mode, expires_in_s: Number(v.minutes) * 60, reason: v.reason.trim() };
        if (STOPPING.has(v.mode)) body.confirm = v.confirm.trim();
        return con.command('set_mode', body);
      },
      (v) => {
        if (STOPPING.has(v.mode) && v.confirm.trim() !== j.id) return { field: 'confirm', message: t('err_confirm', { id: j.id }) };
        return minutesCheck(t, v, maxMin) || reasonCheck(t, v);
      },
    );
    // The confirmation is asked for (and marked) only when the mode stops the signals.
    const mark = () => form.classList.toggle('stopping', STOPPING.has(mode.value));
    mode.addEventListener('change', mark);
    mark();
  }

  /** A loudspeaker announcement from the desk's templates. */
  announce(j) {
    const { t, con, i18n } = this;
    const list = con.desk.announcements;
    if (!list.length) {
      con.say(t('err_no_templates'), 'crit');
      return;
    }
    const template = h('select', { name: 'template' }, ...list.map((a) => h('option', { value: a.id }, i18n.lang === 'en' ? a.en_text : a.id_text)));
    const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', value: '' });
    this.form(
      'announce',
      t('form_title.announce', { name: j.name }),
      [[t('l_template'), template], [t('l_reason'), reason]],
      (v) => con.command('announce', { template: v.template, reason: v.reason.trim() }),
      (v) => reasonCheck(t, v),
    );
  }

  /**
   * A green corridor for an emergency unit on its way (`g`): the unit (the
   * units panel's, `unit` or the most urgent first), the minutes each
   * junction holds its green at most, and a reason, started as the call and
   * its priority (and following the unit picked until edited).
   */
  corridor(unit) {
    const { t, con } = this;
    const rows = con.units();
    if (!rows.length) {
      con.say(t('err_no_units'), 'crit');
      return;
    }
    const label = (r) => [r.unit, r.kind, r.call_id, r.priority != null ? `P${r.priority}` : null, t(`unit_status.${r.status}`)].filter(Boolean).join(' · ');
    const pick = h('select', { name: 'unit' }, ...rows.map((r) => h('option', { value: r.unit }, label(r))));
    pick.value = rows.some((r) => r.unit === unit) ? unit : rows[0].unit;
    const maxMin = Math.floor(con.limit('lease_max_s', 7200) / 60);
    const start = Math.max(1, Math.round(con.limit('corridor_s', DEFAULT_CORRIDOR_MIN * 60) / 60));
    const minutes = h('input', { name: 'minutes', type: 'number', min: 1, max: maxMin, step: 1, value: String(Math.min(start, maxMin)), inputmode: 'numeric' });
    const rowOf = (id) => rows.find((r) => r.unit === id) || null;
    let prefilled = corridorReason(rowOf(pick.value));
    const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', value: prefilled });
    pick.addEventListener('change', () => {
      // The reason follows the unit while the officer has not written their own.
      if (reason.value.trim() === prefilled.trim()) reason.value = prefilled = corridorReason(rowOf(pick.value));
      else prefilled = corridorReason(rowOf(pick.value));
    });
    this.form(
      'corridor',
      t('form_title.corridor'),
      [[t('l_unit'), pick], [t('l_corridor_minutes', { max: maxMin }), minutes], [t('l_reason'), reason]],
      (v) => con.corridor(v.unit, Number(v.minutes), v.reason.trim()),
      (v) => (!v.unit ? { field: 'unit', message: t('err_unit') } : minutesCheck(t, v, maxMin) || reasonCheck(t, v)),
    );
  }

  /** Automatic mode on (when off) or off (when on). */
  toggleAuto(j) {
    const { t, con } = this;
    const on = !!(j.row && j.row.auto) || con.desk.auto.has(j.id);
    const reason = h('input', { name: 'reason', type: 'text', autocomplete: 'off', value: '' });
    const form = this.form(
      'auto',
      t(on ? 'form_title.auto_off' : 'form_title.auto_on', { name: j.name }),
      [[t('l_reason'), reason]],
      (v) => con.setAuto(!on, v.reason.trim()),
      (v) => reasonCheck(t, v),
    );
    form.dataset.enabled = String(!on);
  }
}

function reasonCheck(t, v) {
  return v.reason.trim() ? null : { field: 'reason', message: t('err_reason') };
}

function minutesCheck(t, v, maxMin) {
  const m = Number(v.minutes);
  return Number.isFinite(m) && m >= 1 && m <= maxMin ? null : { field: 'minutes', message: t('err_minutes', { max: maxMin }) };
}
