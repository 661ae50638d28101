// The admin screen: users and wall displays, through /api/admin/*. Every
// change is audited on the server under the signed-in administrator.
import { api } from './adminapi.js';

const message = document.getElementById('message');
function show(text, ok = false) {
  message.textContent = text;
  message.className = ok ? 'message ok' : 'message';
  message.hidden = false;
}

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.append(td);
  return td;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'quiet';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

async function loadUsers() {
  const { users } = await api('GET', '/api/admin/users');
  const body = document.querySelector('#users tbody');
  body.replaceChildren();
  for (const u of users) {
    const tr = document.createElement('tr');
    tr.dataset.user = u.username;
    cell(tr, u.username);
    cell(tr, u.roles.join(', '));
    cell(tr, u.cities.join(', ') || '—');
    cell(tr, u.districts.join(', ') || '—');
    cell(tr, u.disabled ? 'nonaktif · disabled' : 'aktif · active');
    const actions = cell(tr, '');
    actions.append(
      button(u.disabled ? 'Aktifkan · Enable' : 'Nonaktifkan · Disable', async () => {
        await run(() => api('POST', `/api/admin/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled }));
        await loadUsers();
      }),
      button('Kata sandi baru · New password', async () => {
        const password = prompt(`Kata sandi baru untuk ${u.username} · New password (8+)`);
        if (password) await run(() => api('POST', `/api/admin/users/${encodeURIComponent(u.username)}`, { password }), 'Kata sandi diganti · Password changed');
      }),
    );
    body.append(tr);
  }
}

async function loadDisplays() {
  const { displays } = await api('GET', '/api/admin/displays');
  const body = document.querySelector('#displays tbody');
  body.replaceChildren();
  for (const d of displays) {
    const tr = document.createElement('tr');
    cell(tr, d.name);
    cell(tr, d.layout);
    cell(tr, new Date(d.created).toLocaleString());
    cell(tr, d.revoked ? 'dicabut · revoked' : 'aktif · active');
    const actions = cell(tr, '');
    if (!d.revoked) {
      actions.append(button('Cabut · Revoke', async () => {
        await run(() => api('POST', `/api/admin/displays/${encodeURIComponent(d.name)}/revoke`));
        await loadDisplays();
      }));
    }
    body.append(tr);
  }
}

async function run(f, done) {
  try {
    const r = await f();
    if (done) show(done, true);
    return r;
  } catch (e) {
    show(e.message);
    return null;
  }
}

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

document.getElementById('add-user').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await run(() => api('POST', '/api/admin/users', {
    username: f.get('username'),
    roles: [f.get('role')],
    cities: list(f.get('cities')),
    districts: list(f.get('districts')),
    password: f.get('password'),
  }), 'Pengguna ditambahkan · User added');
  if (r) { ev.target.reset(); await loadUsers(); }
});

document.getElementById('add-display').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await run(() => api('POST', '/api/admin/displays', { name: f.get('name'), layout: f.get('layout') }));
  if (r) {
    const t = document.getElementById('token');
    t.textContent = `Buka sekali di PC dinding · Open once on the wall PC (not shown again): ${location.origin}${r.path}`;
    t.hidden = false;
    ev.target.reset();
    await loadDisplays();
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  await run(() => api('POST', '/api/logout'));
  location.href = '/login';
});

run(loadUsers);
run(loadDisplays);
