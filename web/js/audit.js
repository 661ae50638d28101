// The audit log with filters (user, action, entity, time), newest first.
import { api } from './adminapi.js';
import { replayHref } from './shell/replay.js';

const form = document.getElementById('filters');
const message = document.getElementById('message');

async function load() {
  const f = new FormData(form);
  const q = new URLSearchParams();
  for (const k of ['actor', 'action', 'entity']) if (f.get(k)) q.set(k, f.get(k));
  for (const k of ['from', 'to']) if (f.get(k)) q.set(k, new Date(f.get(k)).toISOString());
  try {
    const { rows } = await api('GET', '/api/admin/audit?' + q);
    message.hidden = true;
    const body = document.querySelector('#audit tbody');
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement('tr');
      for (const v of [r.id, new Date(r.at).toLocaleString(), r.actor, r.role, r.addr, r.action, r.entity, r.outcome, r.detail === '{}' ? '' : r.detail]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      const h = document.createElement('td');
      h.className = 'hash';
      h.textContent = r.hash.slice(0, 12) + '…';
      h.title = r.hash;
      tr.append(h);
      // "Show me the room when this happened": the wall replayed from a minute before.
      const replay = document.createElement('td');
      const href = replayHref(Date.parse(r.at), { city: cityOf(r.entity) });
      if (href) {
        const a = document.createElement('a');
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener';
        a.className = 'replay-link';
        a.textContent = '⟲ putar ulang';
        replay.append(a);
      }
      tr.append(replay);
      body.append(tr);
    }
  } catch (e) {
    message.textContent = e.message;
    message.hidden = false;
  }
}

/** The city an audited entity names (`city:badung`, `call:cilegon/112-...`, `atcs:cilegon/...`), if any. */
function cityOf(entity) {
  const m = /^(?:call|city|unit|atcs|intersection|incident|app|shift):([a-z0-9-]+)(?:\/|$)/.exec(entity || '');
  return m ? m[1] : null;
}

form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
load();
