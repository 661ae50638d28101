// The dispatcher console's targets, in one object so that a centre can set
// its own (tests and operators may change `TARGETS` in place before or
// while the console runs: every render reads it afresh). The answer, dispatch
// and unit stage targets come from the server's configuration
// (`GET /api/dispatch/targets`, `loadTargets()` at start-up); the values
// below are what the console uses when that request fails. Severities use
// the shell's colour words: 'warn' is the amber state, 'crit' the red one,
// and each always comes with a word (HAMPIR / LEWAT) on screen.

import { ANSWER_TARGETS, serverTargets } from '../targets.js';

export const TARGETS = {
  /** The answer standard the targets follow ('nena', 'nfpa'; the server names it). */
  standard: 'nena',
  /**
   * Answer: the standard's targets, `shares` as `[{s, pct}]` (NENA: 90 %
   * of calls within 15 s, 95 % within 20 s). A ringing call turns amber
   * past `amberS` (the first target's seconds) and red past `redS` (the
   * last one's); with a single target (NFPA: 10 s), amber from `amberShare` of it.
   */
  answer: { shares: ANSWER_TARGETS.map((x) => ({ ...x })), amberS: 15, redS: 20 },
  /**
   * Dispatch: seconds from answer to the first unit dispatched, by priority
   * (1 = life-threatening). Amber from `amberShare` of the target, red past it.
   */
  dispatch: { 1: 60, 2: 120, 3: 300, 4: 600 },
  /** The priority whose target an answered call without one is held to. */
  unclassifiedPriority: 3,
  amberShare: 0.8,
  /** A unit whose stage has not changed for longer than this (seconds) is highlighted. */
  unitStale: { dispatched: 120, en_route: 900, on_scene: 3600 },
  /** How long an ended call stays in the "recently closed" queue, seconds. */
  closedWindowS: 1800,
  /** An action whose events have not come back over the socket by then is shown as not confirmed, seconds. */
  confirmS: 15,
  /** Waits before each retry of an action that got no HTTP answer (the same action_id every time), ms. */
  retryMs: [500, 1000, 2000, 4000, 8000],
  /**
   * A 429 (too many actions) is retried once, same action_id, after the
   * server's Retry-After when that is at most this long, seconds; a longer
   * wait is refused at once, like any other 4xx.
   */
  throttledMaxS: 60,
};

/**
 * Reads the server's targets into `TARGETS` (in place: what the panels
 * read); resolves to true when they came from the server, false when the
 * values above stay (request failed, or a part of the answer unusable).
 */
export async function loadTargets() {
  const served = await serverTargets();
  if (!served) return false;
  if (served.standard) TARGETS.standard = served.standard;
  if (served.answer && served.answer.length) {
    const shares = served.answer.map((x) => ({ ...x }));
    const redS = shares[shares.length - 1].s;
    TARGETS.answer = { shares, amberS: shares.length > 1 ? shares[0].s : redS * TARGETS.amberShare, redS };
  } else if (served.answer) {
    // A standard without answer targets: no target lines, the timers keep their limits.
    TARGETS.answer = { ...TARGETS.answer, shares: [] };
  }
  if (served.dispatchS) TARGETS.dispatch = served.dispatchS;
  if (served.unitStageS) TARGETS.unitStale = served.unitStageS;
  return !!(served.answer && served.dispatchS && served.unitStageS);
}

/** The answer target for calls answered within `s` seconds, as a percentage (null: none in the standard). */
export function answerTarget(s) {
  const hit = TARGETS.answer.shares.find((x) => x.s === s);
  return hit ? hit.pct : null;
}

/** 'ok' | 'warn' | 'crit' for a call ringing for `waitS` seconds. */
export function answerSeverity(waitS) {
  const a = TARGETS.answer;
  if (waitS > a.redS) return 'crit';
  if (waitS > a.amberS) return 'warn';
  return 'ok';
}

/** The dispatch target for a priority (null: not yet classified), seconds. */
export function dispatchTarget(priority) {
  const d = TARGETS.dispatch;
  return d[priority] ?? d[TARGETS.unclassifiedPriority];
}

/** 'ok' | 'warn' | 'crit' for an answered call waiting `waitS` seconds for a unit. */
export function dispatchSeverity(waitS, priority) {
  const target = dispatchTarget(priority);
  if (waitS > target) return 'crit';
  if (waitS >= target * TARGETS.amberShare) return 'warn';
  return 'ok';
}

/** The limit for a unit in `stage` (dispatched, en_route, on_scene), seconds, or null when it has none. */
export function unitStaleLimit(stage) {
  return TARGETS.unitStale[stage] ?? null;
}

/** True when a unit has been in `stage` for `ageS` seconds, past its limit. */
export function unitIsStale(stage, ageS) {
  const limit = unitStaleLimit(stage);
  return limit != null && ageS > limit;
}
