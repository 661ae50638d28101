// The supervisors' reports page: the shift to report on (times entered in
// WIB), a link to its printable report, and the incoming supervisor's
// acceptance of the handover (the server audits it under the session's user
// with a digest of the report's figures); the acceptances so far, from the audit.
import { api } from './adminapi.js';

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

/** A `datetime-local` value (YYYY-MM-DDTHH:MM) for an instant, in WIB. */
function wibLocal(ms) {
  return new Date(ms + 7 * 3600_000).toISOString().slice(0, 16);
}

/** The RFC 3339 time of a `datetime-local` value read as WIB. */
function fromWib(v) {
  return v ? `${v}:00+07:00` : '';
}

function shift() {
  const f = new FormData(form);
  return { city: String(f.get('city') || ''), from: fromWib(String(f.get('from') || '')), to: fromWib(String(f.get('to') || '')), lang: String(f.get('lang') || 'id') };
}

function updateLink() {
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
    cell(tr, wibLocal(Date.parse(r.at)).replace('T', ' '));
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
  form.elements.city.value = params.get('city') || '';
  form.elements.from.value = wibLocal(now - SHIFT_HOURS * 3600_000);
  form.elements.to.value = wibLocal(now);
  if (!form.elements.city.value) {
    const scenario = await fetch('/api/scenario', { credentials: 'same-origin' }).then((r) => (r.ok ? r.json() : null)).catch(() => null);
    if (scenario && scenario.city) form.elements.city.value = scenario.city;
  }
  updateLink();
  form.addEventListener('input', updateLink);
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
