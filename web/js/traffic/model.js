// What the traffic console reads from the replica's junctions and commands,
// as plain functions (no DOM, so they can be checked under node): the level
// of service of a degree of saturation, the officer's scope, one board row
// per junction (name, district, worst DS, mode, plan, conditions, stale),
// the board's orders, the signal ring's geometry, how a command reads
// (status, lease, time left) and the WIB timestamps the chart URLs take.

/**
 * Level of service (LOS) from the degree of saturation (DS = flow/capacity),
 * the HCM-style letters the officers use:
 *   A: DS <= 0.6   B: <= 0.7   C: <= 0.8   D: <= 0.9   E: <= 1.0   F: > 1.0.
 * A–C read as flowing (ok), D busy (watch), E near saturation (warn), F
 * over capacity (crit); no DS at all is '?' (stale grey).
 */
const LOS = [
  [0.6, 'A', 'ok'],
  [0.7, 'B', 'ok'],
  [0.8, 'C', 'ok'],
  [0.9, 'D', 'watch'],
  [1.0, 'E', 'warn'],
];

/** `{grade, sev}` of a DS (see LOS). */
export function los(ds) {
  if (ds == null || !Number.isFinite(ds)) return { grade: '?', sev: 'stale' };
  for (const [max, grade, sev] of LOS) if (ds <= max) return { grade, sev };
  return { grade: 'F', sev: 'crit' };
}

/** The board's orders, in the order `s` cycles through them. */
export const SORTS = ['ds', 'name', 'district'];

/** The condition kinds, in the order the top bar counts them. */
export const CONDITIONS = ['congested', 'detector_fault', 'detector_stuck', 'detector_flicker', 'comm_loss', 'flashing', 'off'];

/** How each condition is coloured (badges, the top bar's counts). */
export const COND_SEV = { congested: 'crit', detector_fault: 'warn', detector_stuck: 'warn', detector_flicker: 'watch', comm_loss: 'stale', flashing: 'warn', off: 'crit' };

/** How each controller mode is coloured: anything but adaptive deserves a look. */
export const MODE_SEV = { adaptive: 'none', fixed: 'watch', manual: 'watch', flashing: 'warn', off: 'crit' };

/** Seconds of silence past a feed's own threshold before this screen calls it stale itself (as replica.js does). */
const STALE_GRACE_S = 3;

/** An RFC 3339 time in ms (NaN when absent or unreadable). */
export function ms(ts) {
  return ts == null ? NaN : Date.parse(ts);
}

/**
 * The junctions `me` (`/api/me`) may see: a supervisor or a user without
 * districts sees every one; an officer with districts only those whose info
 * names one of them (a junction whose district is unknown is not theirs,
 * as the server's `in_scope` rules).
 */
export function scopeOf(me) {
  const roles = (me && me.roles) || [];
  const districts = (me && Array.isArray(me.districts) && me.districts) || [];
  const all = roles.includes('supervisor') || districts.length === 0;
  const set = new Set(districts);
  return { all, districts: all ? [] : [...districts].sort(), has: (d) => all || (d != null && set.has(d)) };
}

/** The key a junction's `atcs` feed has in the replica. */
export function feedKey(city, id) {
  return `${city}/atcs/${id}`;
}

/**
 * Whether a junction is out of touch at `now`: a comm_loss condition or a
 * stale feed. `{stale, since}` (since: ms of the last data, NaN if none).
 */
export function staleOf(v, feed, now) {
  const loss = (v.conditions || []).find((c) => c.kind === 'comm_loss');
  let stale = !!loss;
  let since = loss ? ms(loss.since) : NaN;
  if (feed) {
    const last = ms(feed.last_rx);
    if (feed.stale || (now - last) / 1000 > feed.stale_after_s + STALE_GRACE_S) {
      stale = true;
      since = last;
    }
  }
  if (stale && !Number.isFinite(since)) since = ms(v.rx);
  return { stale, since };
}

/**
 * One board row of the intersection entity `v` at `now`: `feed` its atcs
 * feed (or null), `auto` its automatic-mode entry (or null).
 */
export function junctionView(v, feed, auto, now) {
  const info = v.info || null;
  const st = v.state || null;
  const ds = Number.isFinite(v.worst_saturation) ? v.worst_saturation : null;
  const grade = los(ds);
  const { stale, since } = staleOf(v, feed, now);
  return {
    key: `${v.city}/${v.id}`,
    city: v.city,
    id: v.id,
    name: (info && info.name) || v.id,
    district: (info && info.district) || null,
    lat: info ? info.lat : null,
    lon: info ? info.lon : null,
    ds,
    grade: grade.grade,
    sev: stale ? 'stale' : grade.sev,
    mode: st ? st.mode : null,
    plan: st ? String(st.plan) : null,
    cycle: st ? st.cycle_s : null,
    conditions: v.conditions || [],
    suggestions: v.suggestions || [],
    stale,
    staleSince: since,
    noData: !st,
    auto,
    v,
  };
}

const byName = (a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const ORDERS = {
  // Highest DS first; junctions without a DS last.
  ds: (a, b) => (b.ds ?? -1) - (a.ds ?? -1) || byName(a, b),
  name: byName,
  district: (a, b) => (a.district || '\uffff').localeCompare(b.district || '\uffff') || byName(a, b),
};

/** Sorts board rows in place by one of SORTS. */
export function sortRows(rows, sort) {
  return rows.sort(ORDERS[sort] || ORDERS.ds);
}

/**
 * The index of the running phase among the approaches (which the info lists
 * in phase order): phase 1 or "A" is the first. `phase` may be a number or
 * a label ("2", "B"); null when none runs (0) or it cannot be placed.
 */
export function phaseIndex(phase, count) {
  if (phase == null || count <= 0) return null;
  const p = String(phase).trim().toUpperCase();
  let i = null;
  if (/^\d+$/.test(p)) i = Number(p) - 1;
  else if (/^[A-Z]$/.test(p)) i = p.charCodeAt(0) - 65;
  return i != null && i >= 0 && i < count ? i : null;
}

/** The phase's label as shown ("B", "2"), or '–' for none (0). */
export function phaseLabel(phase) {
  if (phase == null) return '–';
  const p = String(phase).trim();
  return p === '' || p === '0' ? '–' : p;
}

/**
 * The signal ring of a junction's state at `now`: `{kind}` is 'none' (no
 * state), 'flashing' or 'off', else 'run' with `label`, the phase
 * `segments` (fractions of the cycle, `[{start, end, current}]`, one per
 * approach by its green time, the intergreens shared between them) and the
 * `hand` (fraction of the cycle), moved on by the time since the state's
 * `ts` so that the ring runs between two states.
 */
export function ringModel(st, now) {
  if (!st) return { kind: 'none', label: '–' };
  if (st.mode === 'flashing' || st.mode === 'off') return { kind: st.mode, label: phaseLabel(st.phase) };
  const cycle = Number(st.cycle_s) || 0;
  const label = phaseLabel(st.phase);
  const greens = (st.approaches || []).map((a) => Math.max(0, Number(a.green_s) || 0));
  const sum = greens.reduce((x, y) => x + y, 0);
  const age = Math.max(0, (now - ms(st.ts)) / 1000) || 0;
  const elapsed = Math.max(0, (Number(st.phase_elapsed_s) || 0) + age);
  if (cycle <= 0 || !greens.length || sum <= 0) {
    return { kind: 'run', label, segments: [], hand: cycle > 0 ? (elapsed % cycle) / cycle : 0, elapsed };
  }
  const scale = sum > cycle ? cycle / sum : 1;
  const gap = sum < cycle ? (cycle - sum) / greens.length : 0;
  const cur = phaseIndex(st.phase, greens.length);
  const segments = [];
  let at = 0;
  for (const [i, g] of greens.entries()) {
    const len = g * scale;
    segments.push({ start: at / cycle, end: (at + len) / cycle, current: i === cur });
    at += len + gap;
  }
  let hand;
  if (cur == null) hand = (elapsed % cycle) / cycle;
  else {
    const seg = segments[cur];
    const room = greens[cur] * scale + gap;
    hand = seg.start + Math.min(elapsed, room) / cycle;
  }
  return { kind: 'run', label, segments, hand: Math.min(hand, 1), elapsed };
}

/** `mm:ss` of a count of seconds (never negative). */
export function mmss(seconds) {
  const s = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** The WIB (UTC+7, no daylight saving) ISO time of `msValue`, e.g. `2026-11-22T08:00:00+07:00`. */
export function isoWib(msValue) {
  const d = new Date(Math.floor(msValue / 1000) * 1000 + 7 * 3600_000);
  return d.toISOString().replace(/\.\d{3}Z$/, '+07:00');
}

/**
 * A command entity as the console shows it at `now`: `{command_id,
 * intersection, city, action, status, lease_state, remaining_s, at}`
 * (`remaining_s` while its lease is in force, else null; `at`: when it was
 * issued, ms).
 */
export function commandView(c, now) {
  const lease = c.lease || null;
  const inForce = !!lease && lease.state === 'in_force';
  const until = lease ? ms(lease.until) : NaN;
  const cmd = c.command || null;
  return {
    command_id: c.command_id,
    city: c.city,
    intersection: c.intersection,
    action: cmd ? cmd.action : null,
    status: c.status,
    lease_state: lease ? lease.state : null,
    remaining_s: inForce && Number.isFinite(until) ? Math.max(0, (until - now) / 1000) : null,
    at: cmd ? ms(cmd.ts) : ms(c.rx),
  };
}

/**
 * The suggestions of a junction, the most saturated first (the "top" one,
 * that `a` approves, is the first).
 */
export function rankedSuggestions(list) {
  return [...(list || [])].sort((a, b) => (b.saturation ?? 0) - (a.saturation ?? 0));
}

/** The unit statuses of a unit on its way to a call: the ones a green corridor is for. */
export const ON_WAY = ['dispatched', 'en_route'];

/**
 * Per unit id, the junctions holding a green for it now: the `priority`
 * commands (not releases) among `commands` (entities) whose lease is in
 * force, `{active, pending}` as sets of `city/intersection` keys (`pending`:
 * published, no answer yet).
 */
export function corridorHolds(commands) {
  const out = new Map();
  for (const c of commands) {
    const cmd = c.command;
    if (!cmd || cmd.action !== 'priority' || cmd.reverts || !cmd.unit) continue;
    const inForce = !!c.lease && c.lease.state === 'in_force';
    if (!inForce && c.status !== 'pending') continue;
    let e = out.get(cmd.unit);
    if (!e) out.set(cmd.unit, (e = { active: new Set(), pending: new Set() }));
    (inForce ? e.active : e.pending).add(`${c.city}/${c.intersection}`);
  }
  return out;
}

/**
 * The units on their way to a call (ON_WAY) of `city`, the most urgent
 * first: the call's priority (1 first, unknown last), then the longest in
 * that status. `units`: unit entities; `since(unit)`: ms the unit's status
 * began (NaN: unknown, its `ts` then); `holds`: corridorHolds(...). Each:
 * `{unit, kind, agency, status, call_id, priority, sinceMs, ageS, active,
 * pending, v}` (`active`/`pending`: junctions held / asked for).
 */
export function unitsOnWay(units, city, since, holds, now) {
  const rows = [];
  for (const u of units) {
    if (!u || (city && u.city !== city) || !ON_WAY.includes(u.status)) continue;
    const a = u.assignment && u.assignment.action !== 'cancel' ? u.assignment : null;
    const callId = u.call_id || (a && a.call_id) || null;
    const p = a && (!callId || a.call_id === callId) ? Number(a.priority) : NaN;
    let at = since(u);
    if (!Number.isFinite(at)) at = ms(u.ts);
    const hold = holds.get(u.unit);
    rows.push({
      unit: u.unit,
      kind: u.kind || null,
      agency: u.agency || null,
      status: u.status,
      call_id: callId,
      priority: Number.isInteger(p) && p >= 1 ? p : null,
      category: (a && a.category) || null,
      sinceMs: at,
      ageS: Number.isFinite(at) ? Math.max(0, (now - at) / 1000) : null,
      active: hold ? hold.active.size : 0,
      pending: hold ? hold.pending.size : 0,
      v: u,
    });
  }
  const pr = (r) => r.priority ?? Infinity;
  const t0 = (r) => (Number.isFinite(r.sinceMs) ? r.sinceMs : Infinity);
  return rows.sort((a, b) => pr(a) - pr(b) || t0(a) - t0(b) || (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
}

/** The reason a corridor form starts with: the call and its priority, "119-20261122-0042 P1". */
export function corridorReason(r) {
  if (!r) return '';
  return [r.call_id, r.priority != null ? `P${r.priority}` : null].filter(Boolean).join(' ');
}
