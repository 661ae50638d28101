// The call-taking indicators of the EU's 112 reports (and NENA's), from the
// server's `counters` update (PROTOCOL.md): per line (`lines["112"]`,
// `lines["119"]`), exact for the whole city day and unaffected by a reload,
// unlike anything counted over the replica's calls (it holds only the last
// few hundred closed ones). Shared by the wall's calls panel (one line at a
// time) and the dispatcher console's KPI strip (112 and 119 together).
// Plain functions, no DOM: a node script can check the arithmetic.

/** The emergency lines. */
export const LINES = ['112', '119'];
/** The answer-time thresholds the counters count, seconds (`answered_within_{s}s`). */
export const WITHIN_S = [10, 15, 20];

const count = (v) => (Number.isFinite(v) && v > 0 ? v : 0);
const pct = (n, of) => (of > 0 ? (100 * n) / of : null);

/**
 * The line counters of `counters` values (one per city; null entries are
 * skipped) for `lines`: an array of `lines[line]` objects, missing ones left out.
 */
export function lineCounters(values, lines = LINES) {
  const out = [];
  for (const c of values) {
    if (!c || !c.lines) continue;
    for (const line of lines) if (c.lines[line]) out.push(c.lines[line]);
  }
  return out;
}

/**
 * The indicators over one or more lines' counters (`lineCounters`):
 *
 * - `received`, `answered`, `abandoned`: today's calls;
 * - `within[s]`: % answered within s seconds, of the calls answered or
 *   abandoned ("decided": a call still ringing counts nowhere yet, as on the wall);
 * - `meanAnswerS`: mean answer time, the lines' means weighted by their `n`;
 * - `slowestS`: mean of the slowest 10 % of answer times. Exact for one
 *   line. Over several lines it is the mean of the union of each line's
 *   slowest tenth (each line's figure weighted by its ceil(n / 10) calls):
 *   the exact figure needs the merged distribution, which the counters do
 *   not carry; this one never overstates it (it averages as many calls as
 *   the merged tenth holds, or one more, taken from the lines' own tails,
 *   and no set of that size averages more than the merged top). `slowestByLine`
 *   (line -> seconds or null) has the exact per-line figures beside it;
 * - `abandonPct`: % abandoned of received;
 * - `prankGhostPct`: % triaged prank or ghost, of every call triaged today.
 *
 * Null wherever there is nothing to divide yet.
 */
export function indicators(list) {
  let received = 0;
  let answered = 0;
  let abandoned = 0;
  let timed = 0;
  let timeSum = 0;
  let tailN = 0;
  let tailSum = 0;
  let triaged = 0;
  let prankGhost = 0;
  const within = Object.fromEntries(WITHIN_S.map((s) => [s, 0]));
  for (const lc of list) {
    received += count(lc.received);
    answered += count(lc.answered);
    abandoned += count(lc.abandoned);
    for (const s of WITHIN_S) within[s] += count(lc[`answered_within_${s}s`]);
    const at = lc.answer_times || {};
    const n = count(at.n);
    if (n && Number.isFinite(at.mean_s)) {
      timed += n;
      timeSum += at.mean_s * n;
    }
    if (n && Number.isFinite(at.slowest_10pct_mean_s)) {
      const k = Math.ceil(n / 10);
      tailN += k;
      tailSum += at.slowest_10pct_mean_s * k;
    }
    for (const [triage, v] of Object.entries(lc.triage || {})) {
      triaged += count(v);
      if (triage === 'prank' || triage === 'ghost') prankGhost += count(v);
    }
  }
  const decided = answered + abandoned;
  return {
    received,
    answered,
    abandoned,
    decided,
    within: Object.fromEntries(WITHIN_S.map((s) => [s, pct(within[s], decided)])),
    meanAnswerS: timed ? timeSum / timed : null,
    slowestS: tailN ? tailSum / tailN : null,
    abandonPct: pct(abandoned, received),
    triaged,
    prankGhostPct: pct(prankGhost, triaged),
  };
}

/** `indicators` over `lines` of the `counters` values, with `slowestByLine` (exact per line). */
export function cityIndicators(values, lines = LINES) {
  const out = indicators(lineCounters(values, lines));
  out.slowestByLine = {};
  for (const line of lines) {
    const one = lineCounters(values, [line]);
    out.slowestByLine[line] = one.length ? indicators(one).slowestS : null;
  }
  return out;
}
