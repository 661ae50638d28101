// The supervisors' reports page: the shift to report on (times entered in
// the city's zone: WIB, WITA or WIT), a link to its printable report, and the incoming supervisor's
// acceptance of the handover (the server audits it under the session's user
// with a digest of the report's figures); the acceptances so far, from the audit.
import { api } from './adminapi.js';
import { zoneOf } from './i18n.js';

/** The shift a supervisor hands over most often: the last 8 hours. */
const SHIFT_HOURS = 8;
/** Acceptances listed. */
const LISTED = 20;

const form = document.getElementById('shift');
const message = document.getElementById('message');
const open = document.getElementById('open');

function show(text, ok = false) {
  message.textContent = text;
  message.className = ok ? 'message ok' : 'message';
  message.hidden = false;
}

/** Hours ahead of UTC of Indonesia's zones (none has daylight saving). */
const OFFSET_H = { WIB: 7, WITA: 8, WIT: 9 };
/** /api/me's `time_zones`: each city's zone. */
let timeZones = null;

/** The zone of the city in the form. */
function zone() {
  return zoneOf(timeZones, form.elements.city.value.trim());
}

/** A `datetime-local` value (YYYY-MM-DDTHH:MM) for an instant, in `z` (WIB by default). */
function localValue(ms, z = 'WIB') {
  return new Date(ms + OFFSET_H[z] * 3600_000).toISOString().slice(0, 16);
}

/** The RFC 3339 time of a `datetime-local` value read in `z`. */
function fromLocal(v, z) {
  return v ? `${v}:00+0${OFFSET_H[z]}:00` : '';
}

function shift() {
  const f = new FormData(form);
  const z = zone();
  return { city: String(f.get('city') || ''), from: fromLocal(String(f.get('from') || ''), z), to: fromLocal(String(f.get('to') || ''), z), lang: String(f.get('lang') || 'id') };
}

/** The form's labels name the city's zone. */
function labelZone() {
  const z = zone();
  form.elements.from.previousElementSibling.textContent = `Dari (${z}) · From`;
  form.elements.to.previousElementSibling.textContent = `Sampai (${z}) · To`;
  form.dataset.zone = z;
}

function updateLink() {
  labelZone();
  const s = shift();
  open.href = '/reports/shift?' + new URLSearchParams(s).toString();
}

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.append(td);
}

async function loadHandovers() {
  const { rows } = await api('GET', `/api/admin/audit?action=handover_accepted&limit=${LISTED}`);
  const body = document.querySelector('#handovers tbody');
  body.replaceChildren();
  for (const r of rows) {
    let d = {};
    try { d = JSON.parse(r.detail); } catch { /* an old row */ }
    const tr = document.createElement('tr');
    tr.dataset.digest = d.digest || '';
    cell(tr, localValue(Date.parse(r.at)).replace('T', ' '));
    cell(tr, r.actor);
    cell(tr, r.entity.replace(/^shift:/, ''));
    cell(tr, d.open_calls ?? '–');
    cell(tr, d.live_alerts ?? '–');
    cell(tr, (d.digest || '').slice(0, 16));
    body.append(tr);
  }
}

async function start() {
  const params = new URLSearchParams(location.search);
  const now = Date.now();
  const get = (url) => fetch(url, { credentials: 'same-origin' }).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  const me = await get('/api/me');
  timeZones = me && me.time_zones;
  form.elements.city.value = params.get('city') || '';
  if (!form.elements.city.value) {
    const scenario = await get('/api/scenario');
    if (scenario && scenario.city) form.elements.city.value = scenario.city;
  }
  // The last shift, in the city's own hours.
  form.elements.from.value = localValue(now - SHIFT_HOURS * 3600_000, zone());
  form.elements.to.value = localValue(now, zone());
  let shownZone = zone();
  updateLink();
  form.addEventListener('input', () => {
    // Another city in another zone: the same instants, in its hours.
    const z = zone();
    if (z !== shownZone) {
      for (const el of [form.elements.from, form.elements.to]) {
        const at = Date.parse(fromLocal(el.value, shownZone));
        if (Number.isFinite(at)) el.value = localValue(at, z);
      }
      shownZone = z;
    }
    updateLink();
  });
  document.getElementById('accept').addEventListener('submit', async (e) => {
    e.preventDefault();
    const s = shift();
    const note = String(new FormData(e.target).get('note') || '').trim();
    try {
      const a = await api('POST', '/api/reports/handover', { city: s.city, from: s.from, to: s.to, note: note || null });
      const out = document.getElementById('accepted');
      out.textContent = `Diterima oleh ${a.accepted_by} · accepted: ${a.open_calls} panggilan terbuka, ${a.live_alerts} alarm aktif · digest ${a.digest}`;
      out.hidden = false;
      show('Serah terima tercatat di audit · The handover is recorded in the audit', true);
      await loadHandovers();
    } catch (err) {
      show(err.message);
    }
  });
  document.getElementById('logout').addEventListener('click', async () => {
    await api('POST', '/api/logout').catch(() => {});
    location.href = '/login';
  });
  await loadHandovers().catch((err) => show(err.message));
}

start();
