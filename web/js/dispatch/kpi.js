// The shift's figures, computed in the browser from the calls received today
// (the city's local day, as i18n.js dates it): calls, average answer time,
// share answered within 10, 15 and 20 s (of calls answered or abandoned, as
// the wall counts them), the average of the slowest 10 % of answer times,
// the abandon rate and the share of prank and ghost calls among classified
// ones. `ShiftLog` (a replica observer) keeps every call seen today, so a
// call that leaves the live state (the server keeps the last 200 closed
// ones) still counts.

import { receivedAt } from './model.js';
import { BoundedMap } from '../bounded.js';

/** Calls remembered for the shift's figures (a busy city takes a few thousand a day). */
const CALLS_KEPT = 20_000;
/** The answer-time thresholds shown, seconds. */
export const WITHIN_S = [10, 15, 20];

export class ShiftLog {
  /** `dayOf(ms)`: the city's local day of a time, as a comparable key. */
  constructor(dayOf) {
    this.dayOf = dayOf;
    this.calls = new BoundedMap(CALLS_KEPT);
    this.today = null;
  }

  /** Replica observer hook: keeps the newest value of every call (a removal keeps the last one). */
  update(kind, key, old, value) {
    if (kind === 'call' && value) this.calls.set(key, value);
  }

  /** The call's local day, cached on the value (values are replaced, never changed). */
  day(call) {
    if (call._day === undefined) Object.defineProperty(call, '_day', { value: this.dayOf(receivedAt(call)), enumerable: false });
    return call._day;
  }

  /** Today's calls at `now`; calls of earlier days are forgotten once the day turns. */
  todays(now) {
    const today = this.dayOf(now);
    if (today !== this.today) {
      this.today = today;
      for (const [k, c] of this.calls) if (this.day(c) !== today) this.calls.delete(k);
    }
    const out = [];
    for (const c of this.calls.values()) if (this.day(c) === today) out.push(c);
    return out;
  }
}

/** Seconds from received to answered, or null. */
function answerS(c) {
  if (Number.isFinite(c.answer_s)) return c.answer_s;
  const a = Date.parse(c.stages.answered);
  return Number.isFinite(a) ? (a - receivedAt(c)) / 1000 : null;
}

/**
 * The figures over `calls`: `{calls, avgAnswerS, within: {10: pct, ...},
 * slowestAvgS, abandonPct, prankGhostPct}`; null where there is nothing to divide.
 */
export function shiftKpis(calls) {
  const answers = [];
  let abandoned = 0;
  let classified = 0;
  let prankGhost = 0;
  for (const c of calls) {
    const a = answerS(c);
    if (a != null) answers.push(a);
    if (c.stages.abandoned) abandoned++;
    if (c.stages.classified || c.triage) {
      classified++;
      if (c.triage === 'prank' || c.triage === 'ghost') prankGhost++;
    }
  }
  const decided = answers.length + abandoned;
  const pct = (n, of) => (of ? (100 * n) / of : null);
  const within = {};
  for (const s of WITHIN_S) within[s] = pct(answers.filter((a) => a <= s).length, decided);
  answers.sort((x, y) => y - x);
  const slowest = answers.slice(0, Math.ceil(answers.length * 0.1));
  const mean = (xs) => (xs.length ? xs.reduce((sum, x) => sum + x, 0) / xs.length : null);
  return {
    calls: calls.length,
    avgAnswerS: mean(answers),
    within,
    slowestAvgS: mean(slowest),
    abandonPct: pct(abandoned, calls.length),
    prankGhostPct: pct(prankGhost, classified),
  };
}
