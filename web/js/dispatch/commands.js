// The command line's grammar: one line typed by the dispatcher becomes one
// action for the HTTP API (`POST /api/calls/{city}/{call_id}/actions`), or
// an error to show. Verbs and keywords are case-insensitive; the call
// defaults to the selected one, and a token that is a known call id names
// the call. A leading `/` or `:` (the keys that open the command line) is
// ignored: `/A c-1` is `A c-1`. Nothing here touches the DOM or the network:
// a dispatch of a recommended unit comes back as `pick` (1-3) for the
// console to resolve against the selected call's recommendation.
//
//   A [call]                                  answer
//   C <category> <1-4> [triage] [protocol]    classify
//   L <lat> <lon> [address...]                locate
//   N <text...>                               note
//   D <unit> [unit...]                        dispatch
//   D                                         dispatch the first recommended unit
//   D1 | D2 | D3                              dispatch the 1st/2nd/3rd recommended unit
//   R <unit> [unit...]                        reassign to this call
//   X <unit> [note...]                        cancel a unit
//   T <to> [note...]                          transfer
//   Z <disposition> [note...]                 close
//   CB [note...]                              call back
//   M [other call]                            merge into the other call's incident
//   K [other call]                            keep apart: not the same emergency
//                                             (M and K without a call: the call's one possible duplicate)

export const CATEGORIES = ['fire', 'medical', 'crime', 'traffic_accident', 'disaster', 'public_service', 'prank', 'other'];
export const TRIAGES = ['normal', 'ghost', 'prank', 'info'];
export const DISPOSITIONS = [
  'treated_on_scene', 'transported', 'resolved', 'referred', 'no_action_needed', 'false_alarm',
  'prank', 'ghost', 'duplicate', 'cancelled_by_caller', 'other',
];

const VERBS = new Map(
  Object.entries({
    answer: ['a', 'answer', 'jawab'],
    classify: ['c', 'classify', 'klasifikasi'],
    locate: ['l', 'locate', 'lokasi'],
    note: ['n', 'note', 'catat'],
    dispatch: ['d', 'dispatch', 'kirim'],
    reassign: ['r', 'reassign', 'pindah'],
    cancel_unit: ['x', 'cancel', 'batal'],
    transfer: ['t', 'transfer', 'alihkan'],
    close: ['z', 'close', 'tutup'],
    callback: ['cb', 'callback', 'telepon'],
    merge: ['m', 'merge', 'gabung'],
    keep_apart: ['k', 'keep', 'keep_apart', 'pisah', 'pisahkan'],
  }).flatMap(([action, names]) => names.map((n) => [n, action])),
);

const CATEGORY_ALIASES = new Map(
  Object.entries({
    fire: ['f', 'api', 'kebakaran'],
    medical: ['med', 'medis', 'm'],
    crime: ['cr', 'krim', 'kriminal'],
    traffic_accident: ['acc', 'accident', 'traffic', 'ta', 'laka', 'lakalantas'],
    disaster: ['dis', 'bencana'],
    public_service: ['ps', 'pub', 'public', 'layanan'],
    prank: ['iseng'],
    other: ['oth', 'o', 'lain', 'lainnya'],
  }).flatMap(([cat, names]) => [[cat, cat], ...names.map((n) => [n, cat])]),
);

const TRIAGE_ALIASES = new Map([
  ...TRIAGES.map((t) => [t, t]),
  ['kosong', 'ghost'],
  ['iseng', 'prank'],
  ['informasi', 'info'],
]);

const DISPOSITION_ALIASES = new Map([
  ['tos', 'treated_on_scene'],
  ['fa', 'false_alarm'],
  ['dup', 'duplicate'],
  ['cbc', 'cancelled_by_caller'],
]);

const MAX_UNITS = 8;
/** Recommendations the server gives at most (`D1`..`D3`). */
export const MAX_PICK = 3;
const MAX_NOTE_CHARS = 2000;
const MAX_PROTOCOL_BYTES = 64;

const fail = (error, vars) => ({ error, vars });

/** A disposition from what was typed: exact, an alias, or an unambiguous start of one. */
function disposition(word) {
  const w = word.toLowerCase();
  if (DISPOSITIONS.includes(w)) return w;
  if (DISPOSITION_ALIASES.has(w)) return DISPOSITION_ALIASES.get(w);
  const starts = DISPOSITIONS.filter((d) => d.startsWith(w));
  return w.length >= 2 && starts.length === 1 ? starts[0] : null;
}

/** A coordinate as typed: `-6.017`, or `-6,017` with a decimal comma. */
function coordinate(word) {
  const v = Number(/^-?\d+,\d+$/.test(word) ? word.replace(',', '.') : word);
  return word !== '' && Number.isFinite(v) ? v : null;
}

/**
 * Parses one command line. `ctx`: `{selected}` (the selected call id or
 * null), `callId(token)` (the known call id a token names, any case, or
 * null), `unitId(token)` (the known unit id it names, else the token) and
 * `duplicates(callId)` (the call's possible duplicates, call ids).
 * Returns `{action, call_id, fields, pick?}` or `{error, vars}` (a key of
 * `err.*`); `pick` n: dispatch the n-th recommended unit (fields without units).
 */
export function parse(typed, ctx) {
  const line = String(typed).replace(/^\s*[/:]/, '');
  const words = [...line.matchAll(/\S+/g)];
  if (!words.length) return fail('empty');
  const verbWord = words[0][0];
  // `D1`..`D3`: a recommended unit, by rank.
  const picked = /^(?:d|kirim)([1-9])$/i.exec(verbWord);
  const action = picked ? 'dispatch' : VERBS.get(verbWord.toLowerCase());
  if (!action) return fail('unknown_verb', { verb: verbWord });
  if (picked && Number(picked[1]) > MAX_PICK) return fail('pick_range', { verb: verbWord, max: MAX_PICK });
  const args = words.slice(1).map((m) => ({ w: m[0], at: m.index }));
  /** The rest of the line from argument `i` (free text keeps its spacing). */
  const rest = (i) => (i < args.length ? line.slice(args[i].at).trim() : '');

  let call = null;
  /** Takes argument `i` as the call when it names a known call. */
  const leadingCall = (i = 0) => {
    const id = i < args.length ? ctx.callId(args[i].w) : null;
    if (id) call = id;
    return id ? i + 1 : i;
  };
  /** Removes every argument naming a known call; one at most. */
  const anyCall = () => {
    const kept = [];
    for (const a of args) {
      const id = ctx.callId(a.w);
      if (!id) kept.push(a);
      else if (call && call !== id) return fail('two_calls', { a: call, b: id });
      else call = id;
    }
    return kept;
  };
  const done = (fields = {}, pick = null) => {
    const call_id = call || ctx.selected;
    if (!call_id) return fail('no_call');
    return pick ? { action, call_id, fields, pick } : { action, call_id, fields };
  };
  /** The other call of a merge or keep apart: as named, else the call's one possible duplicate. */
  const otherCall = (missing, self) => {
    if (args.length > 2) return fail('too_many_args', { extra: rest(2) });
    const named = args.map((a) => ctx.callId(a.w) || a.w);
    if (named.length === 2) call = named[0];
    let other = named[named.length - 1];
    if (!named.length) {
      const of = call || ctx.selected;
      if (!of) return fail('no_call');
      const dups = (ctx.duplicates && ctx.duplicates(of)) || [];
      if (dups.length === 1) other = dups[0];
      else if (dups.length > 1) return fail('which_dup', { verb: verbWord.toUpperCase(), list: dups.join(', ') });
      else return fail(missing);
    }
    if (other === (call || ctx.selected)) return fail(self);
    return { other };
  };

  switch (action) {
    case 'answer': {
      if (args.length > 1) return fail('too_many_args', { extra: rest(1) });
      if (args.length) call = ctx.callId(args[0].w) || args[0].w;
      return done();
    }
    case 'classify': {
      const kept = anyCall();
      if (kept.error) return kept;
      if (kept.length < 2) return fail('no_category');
      const category = CATEGORY_ALIASES.get(kept[0].w.toLowerCase());
      if (!category) return fail('category', { v: kept[0].w });
      const p = /^p?([1-4])$/i.exec(kept[1].w);
      if (!p) return fail('priority', { v: kept[1].w });
      const fields = { category, priority: Number(p[1]), triage: 'normal' };
      let i = 2;
      const triage = i < kept.length ? TRIAGE_ALIASES.get(kept[i].w.toLowerCase()) : null;
      if (triage) {
        fields.triage = triage;
        i++;
      }
      if (i < kept.length) {
        const protocol = kept.slice(i).map((a) => a.w).join(' ');
        if (new TextEncoder().encode(protocol).length > MAX_PROTOCOL_BYTES) return fail('protocol');
        fields.protocol = protocol;
      }
      return done(fields);
    }
    case 'locate': {
      let i = leadingCall();
      let lat;
      let lon;
      const pair = i < args.length ? /^(-?[\d.]+),(-?[\d.]+)$/.exec(args[i].w) : null;
      if (pair && args[i].w.includes('.')) {
        [lat, lon] = [coordinate(pair[1]), coordinate(pair[2])];
        i += 1;
      } else if (i + 1 < args.length) {
        [lat, lon] = [coordinate(args[i].w), coordinate(args[i + 1].w)];
        i += 2;
      }
      if (lat == null || lon == null) return fail('coords');
      if (lat < -90 || lat > 90) return fail('lat', { v: lat });
      if (lon < -180 || lon > 180) return fail('lon', { v: lon });
      const fields = { lat, lon };
      const address = rest(i);
      if (address) fields.address = address;
      return done(fields);
    }
    case 'note': {
      const text = rest(leadingCall());
      if (!text) return fail('no_text');
      if ([...text].length > MAX_NOTE_CHARS) return fail('text_long', { n: [...text].length });
      return done({ text });
    }
    case 'dispatch':
    case 'reassign': {
      const kept = anyCall();
      if (kept.error) return kept;
      const units = [...new Set(kept.map((a) => ctx.unitId(a.w)))];
      if (action === 'dispatch' && (picked || !units.length)) {
        if (units.length) return fail('pick_and_units', { verb: verbWord.toUpperCase(), extra: kept.map((a) => a.w).join(' ') });
        return done({}, picked ? Number(picked[1]) : 1);
      }
      if (!units.length) return fail('no_units');
      if (units.length > MAX_UNITS) return fail('units_many');
      return done({ units });
    }
    case 'cancel_unit': {
      let i = leadingCall();
      if (i >= args.length) return fail('no_unit');
      const fields = { unit: ctx.unitId(args[i].w) };
      i = call ? i + 1 : leadingCall(i + 1);
      const note = rest(i);
      if (note) fields.note = note;
      return done(fields);
    }
    case 'transfer': {
      const i = leadingCall();
      if (i >= args.length) return fail('no_to');
      const fields = { to: args[i].w.toLowerCase() };
      const note = rest(i + 1);
      if (note) fields.note = note;
      return done(fields);
    }
    case 'close': {
      const i = leadingCall();
      const list = DISPOSITIONS.join(', ');
      if (i >= args.length) return fail('no_disposition', { list });
      const d = disposition(args[i].w);
      if (!d) return fail('disposition', { v: args[i].w, list });
      const fields = { disposition: d };
      const note = rest(i + 1);
      if (note) fields.note = note;
      return done(fields);
    }
    case 'callback': {
      const note = rest(leadingCall());
      return done(note ? { note } : {});
    }
    case 'merge': {
      const o = otherCall('no_into', 'self_merge');
      return o.error ? o : done({ into: o.other });
    }
    case 'keep_apart': {
      const o = otherCall('no_other', 'self_keep');
      return o.error ? o : done({ other: o.other });
    }
    default:
      return fail('unknown_verb', { verb: verbWord });
  }
}
