// Targets and grades: the thresholds behind every colour on the wall, in one
// place. Colours mean the same everywhere: ok (teal), watch (yellow), warn
// (orange), crit (red), stale/offline (grey); each always comes with a
// letter, number or word so that it reads without colour.

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

/** Emergency lines: answer 90 % of calls within 15 s and 95 % within 20 s. */
export const ANSWER = { fastS: 15, fastPct: 90, slowS: 20, slowPct: 95 };

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

/** Severity of a share answered in time against its target percentage. */
export function shareSeverity(pct, targetPct) {
  if (pct == null) return 'none';
  if (pct >= targetPct) return 'ok';
  if (pct >= targetPct - 5) return 'warn';
  return 'crit';
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

/** Saturation above which an intersection is in incident (halo, ticker). */
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

/** Call surge: at least this many calls in 5 minutes, and 3x the hour's pace. */
export const SURGE = { windowMin: 5, minCalls: 6, factor: 3 };
