// Targets and grades: the thresholds behind every colour on the wall, in one
// place. Colours mean the same everywhere: ok (teal), watch (yellow), warn
// (orange), crit (red), stale/offline (grey); each always comes with a
// letter, number or word so that it reads without colour. The call-taking
// targets the server is configured with (`GET /api/dispatch/targets`) are
// read once per page by `serverTargets()`; the constants here are what a
// screen uses when that fails.

import { get } from './api.js';

/**
 * When a call was received, ms (cached on the call value: values are replaced,
 * never mutated, so the cache lives exactly as long as the value it describes).
 */
export function receivedAt(c) {
  if (c._receivedMs === undefined) {
    Object.defineProperty(c, '_receivedMs', { value: Date.parse((c.stages && c.stages.received) || c.rx), enumerable: false });
  }
  return c._receivedMs;
}

/** Emergency lines: answer 90 % of calls within 15 s and 95 % within 20 s (NENA). */
export const ANSWER = { fastS: 15, fastPct: 90, slowS: 20, slowPct: 95 };

/** The same answer targets as a list, `[{s, pct}]`: the fallback for `serverTargets().answer`. */
export const ANSWER_TARGETS = Object.freeze([
  Object.freeze({ s: ANSWER.fastS, pct: ANSWER.fastPct }),
  Object.freeze({ s: ANSWER.slowS, pct: ANSWER.slowPct }),
]);

const isPositive = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;

/**
 * The answer of `/api/dispatch/targets`, checked: `{standard, answer,
 * dispatchS, unitStageS}`, each part null when the server's was unusable
 * (the caller keeps its own then). `answer`: `[{s, pct}]` by `s` (a share
 * of 0.9 is 90 %); `dispatchS`: priority (1-4) -> seconds; `unitStageS`:
 * stage (dispatched, en_route, on_scene) -> seconds.
 */
export function parseTargets(body) {
  const b = body && typeof body === 'object' ? body : {};
  let answer = null;
  if (Array.isArray(b.answer) && b.answer.every((x) => x && isPositive(x.within_s) && isPositive(x.share) && x.share <= 1)) {
    answer = b.answer.map((x) => ({ s: x.within_s, pct: Math.round(x.share * 10000) / 100 })).sort((x, y) => x.s - y.s);
  }
  const d = b.dispatch_s || {};
  const dispatchS = [1, 2, 3, 4].every((p) => isPositive(d[p])) ? { 1: d[1], 2: d[2], 3: d[3], 4: d[4] } : null;
  const u = b.unit_stage_s || {};
  const unitStageS = ['dispatched', 'en_route', 'on_scene'].every((k) => isPositive(u[k])) ? { dispatched: u.dispatched, en_route: u.en_route, on_scene: u.on_scene } : null;
  return { standard: typeof b.answer_standard === 'string' ? b.answer_standard : null, answer, dispatchS, unitStageS };
}

let served = null;

/**
 * The server's call-taking targets (`parseTargets`), asked once per page
 * however many panels want them; resolves to null when the request failed
 * (the screen keeps its constants, and says so in the console).
 */
export function serverTargets() {
  if (!served) {
    served = get('/api/dispatch/targets').then(parseTargets, (e) => {
      if (!e.login) console.warn(`kendali: /api/dispatch/targets failed (${e.message}); using the built-in targets`);
      return null;
    });
  }
  return served;
}

/**
 * Dispatch targets, seconds from received to a unit dispatched, by priority
 * (1 = life-threatening). Past 80 % of the target a call turns "warn".
 */
export const DISPATCH_S = { 1: 180, 2: 300, 3: 600, 4: 900 };

/** Severity of an unanswered call's wait, seconds. */
export function answerSeverity(waitS) {
  if (waitS > ANSWER.slowS) return 'crit';
  if (waitS > ANSWER.fastS) return 'warn';
  if (waitS > ANSWER.fastS * 0.66) return 'watch';
  return 'ok';
}

/** Severity of the time to dispatch so far (answered, no unit yet). */
export function dispatchSeverity(ageS, priority) {
  const target = DISPATCH_S[priority] ?? DISPATCH_S[4];
  if (ageS > target) return 'crit';
  if (ageS > target * 0.8) return 'warn';
  return 'ok';
}

/**
 * Severity of a share answered in time against its target percentage, the
 * same on the wall and the console: below the target is red ('crit'); on
 * it or above it by less than 5 points (at most half the room left to
 * 100 %: 95-97.5 % for a 95 % target) amber ('warn'), so a day that only
 * just meets its target shows it; above that, 'ok'.
 */
export function shareSeverity(pct, targetPct) {
  if (pct == null || targetPct == null) return 'none';
  if (pct < targetPct) return 'crit';
  if (pct < targetPct + Math.min(5, (100 - targetPct) / 2)) return 'warn';
  return 'ok';
}

/**
 * Intersection grade from the worst degree of saturation (flow/capacity).
 * Bands follow the usual v/c reading of level of service: A..C free flow,
 * D busy, E near capacity, F over capacity (an incident: the queue grows
 * every cycle).
 */
const GRADES = [
  [0.6, 'A', 'ok'],
  [0.7, 'B', 'ok'],
  [0.8, 'C', 'ok'],
  [0.9, 'D', 'watch'],
  [1.0, 'E', 'warn'],
  [Infinity, 'F', 'crit'],
];

/** `{grade, sev}` for a degree of saturation (null: unknown). */
export function gradeOf(ds) {
  if (ds == null || !Number.isFinite(ds)) return { grade: '?', sev: 'stale' };
  for (const [max, grade, sev] of GRADES) if (ds <= max) return { grade, sev };
  return { grade: 'F', sev: 'crit' };
}

/** Saturation above which an intersection is in incident (the map's halo and count). */
export const INCIDENT_DS = 1.0;

/** Priority severity (1 = life-threatening). */
export function prioritySeverity(p) {
  return p === 1 ? 'crit' : p === 2 ? 'warn' : p === 3 ? 'watch' : 'info';
}

/**
 * Whether a KPI is better when lower. The scenario gives a target but not a
 * direction: waits, durations, queues and open backlogs are better low;
 * everything else (shares, counts of service given) better high.
 */
export function lowerIsBetter(metric, unit) {
  return ['min', 's', 'h', 'jam', 'hari', 'days'].includes(unit) || /(wait|queue|backlog|_open|late|overdue|duration)/.test(metric);
}

/**
 * Severity of a KPI value against its target: ok on target, watch within
 * 5 % of it, warn beyond. Service KPIs move over days, not seconds: they
 * never take the red that means "act now" on this wall.
 */
export function kpiSeverity(value, target, lower) {
  if (target == null || value == null) return 'none';
  const margin = Math.abs(target) * 0.05;
  const gap = lower ? value - target : target - value;
  if (gap <= 0) return 'ok';
  if (gap <= margin) return 'watch';
  return 'warn';
}
