// The dispatcher console's targets, in one object so that a centre can set
// its own (tests and operators may change `TARGETS` in place before or
// while the console runs: every render reads it afresh). Severities use the
// shell's colour words: 'warn' is the amber state, 'crit' the red one, and
// each always comes with a word (HAMPIR / LEWAT) on screen.

export const TARGETS = {
  /** Answer: NENA's 15 s (90 % of calls), 20 s (95 %). Amber past `amberS`, red past `redS`. */
  answer: { amberS: 15, redS: 20 },
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
