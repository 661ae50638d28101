// An alert in words: its rule's sentence with the entity named as people
// know it (a junction by its name, a unit by its call sign, a KPI by its
// metric's name), the measured value against the threshold in the right
// unit, and since when. `ctx` is `{t, i18n, replica, scenario}`; the
// names come from the live junctions first, then from the scenario.

import { entityOf, feedFamily, raisedAt } from './model.js';

/**
 * The unit of a rule's value when the alert does not say: seconds for the
 * waits, a percentage for the answer share, a degree of saturation (flow /
 * capacity) for a congested junction, a ratio for a surge.
 */
const RULE_UNIT = {
  call_unanswered: 's',
  answer_target: '%',
  unit_stage: 's',
  feed_stale: 's',
  junction_congested: 'ds',
  call_surge: 'x',
};
/** Seconds up to this read as "34 dtk"; longer ones as a timer "15:00" (the consoles' timers). */
const SECONDS_AS_WORD_MAX = 90;

/** A junction's name: the live one's, the scenario's, else its id. */
function junctionName(city, id, { replica, scenario }) {
  const live = replica && replica.get('intersection')?.get(`${city}/${id}`);
  const name = live && live.value.info && live.value.info.name;
  if (name) return name;
  const known = scenario && (scenario.intersections || []).find((i) => i.id === id);
  return (known && known.name) || id;
}

/** A service's title from the scenario, else its id. */
function serviceTitle(id, { scenario }) {
  const known = scenario && (scenario.services || []).find((s) => s.id === id);
  return (known && known.title) || id;
}

/** A KPI's unit (the alert does not carry it): the live KPI's, else the scenario's. */
function kpiUnit(a, { replica, scenario }) {
  const { id } = entityOf(a.entity);
  const live = replica && replica.get('kpi')?.get(`${a.city}/${id}`);
  if (live && live.value.unit) return live.value.unit;
  const [service, metric] = id.split('/');
  const sv = scenario && (scenario.services || []).find((s) => s.id === service);
  const k = sv && (sv.kpis || []).find((x) => x.metric === metric);
  return (k && k.unit) || null;
}

/**
 * The entity in words: "Simpang PCI", "AMB-03", "112", "ATCS Simpang PCI",
 * "Perizinan · Izin terbit tepat waktu"; also a group's ("Insiden 7",
 * "Perizinan") when given one as `entity`.
 */
export function entityWhat(a, ctx) {
  const { i18n, t } = ctx;
  const e = entityOf(a.entity);
  switch (e.kind) {
    case 'intersection':
      return junctionName(a.city, e.id, ctx);
    case 'unit':
      return e.id.toUpperCase();
    case 'call':
    case 'line':
      return e.id;
    case 'command': {
      // A command's alert is grouped under its junction: name that.
      const g = entityOf(a.group);
      return g.kind === 'intersection' ? junctionName(a.city, g.id, ctx) : e.id.slice(0, 8);
    }
    case 'feed': {
      const family = feedFamily(a);
      const source = e.id.slice(family.length + 1);
      const where = family === 'atcs' ? junctionName(a.city, source, ctx) : family === 'kpi' ? serviceTitle(source, ctx) : source;
      return `${i18n.t(`family.${family}`)} ${where}`.trim();
    }
    case 'kpi': {
      const cut = e.id.indexOf('/');
      const service = cut < 0 ? e.id : e.id.slice(0, cut);
      const metric = cut < 0 ? '' : e.id.slice(cut + 1);
      return metric ? `${serviceTitle(service, ctx)} · ${i18n.metric(metric)}` : serviceTitle(service, ctx);
    }
    case 'service':
      return serviceTitle(e.id, ctx);
    case 'incident':
      return t('incident', { id: e.id });
    default:
      return a.entity || '';
  }
}

/** Seconds in words: "34 dtk", or "15:00" past SECONDS_AS_WORD_MAX. */
function seconds(v, i18n) {
  if (v < SECONDS_AS_WORD_MAX) return `${i18n.num(Math.round(v))} ${i18n.lang === 'en' ? 's' : 'dtk'}`;
  return i18n.timer(v);
}

/** A value in its unit: seconds, "%", a degree of saturation "1,04", a ratio "2,5×", or a KPI's unit. */
export function amount(v, unit, i18n) {
  if (v == null || !Number.isFinite(v)) return '–';
  switch (unit) {
    case 's':
      return seconds(v, i18n);
    case '%':
      return i18n.pct(v, 1);
    case 'ds':
      return i18n.num(v, 2);
    case 'x':
    case 'ratio':
    case '×':
      return `${i18n.num(v, 1)}×`;
    case null:
    case undefined:
    case '':
      return i18n.num(v, Number.isInteger(v) ? 0 : Math.abs(v) < 10 ? 2 : 1);
    default:
      return i18n.kpi(v, unit);
  }
}

/** The alert's sentence: "Panggilan 112-0042 belum dijawab lebih dari 20 dtk", "Simpang PCI jenuh: DS 1,04 (batas 1,00)". */
export function alertText(a, ctx) {
  const { t, i18n } = ctx;
  const unit = a.unit || (a.rule === 'kpi_below_target' ? kpiUnit(a, ctx) : RULE_UNIT[a.rule]) || null;
  const vars = {
    what: entityWhat(a, ctx),
    value: amount(a.value, unit, i18n),
    threshold: amount(a.threshold, unit, i18n),
    rule: a.rule,
  };
  const key = `rule.${a.rule}`;
  return t(key) === a.rule ? t('rule.other', vars) : t(key, vars);
}

/** Since when, at `now`: "sejak 08:12 WIB · 3 mnt" (`short`: "08:12 · 3 mnt"). */
export function sinceText(a, now, { t, i18n }, short = false) {
  const at = raisedAt(a);
  if (!Number.isFinite(at)) return '';
  const vars = { time: i18n.time(at, !short), age: i18n.age((now - at) / 1000) };
  return t(short ? 'since_short' : 'since', vars);
}

/** The state in words: "BELUM DIAKUI", "DIAKUI · dewi", "SELESAI · BELUM DIAKUI", "DITUNDA". */
export function stateText(a, { t }, shelved = false) {
  if (shelved) return t('state.shelved');
  if (a.state === 'active_ack' && a.acked_by) return t('acked_by', { who: a.acked_by });
  return t(`state.${a.state}`);
}
