// The sign-in page: posts the credentials to /api/login, then goes on to
// the page the person came from (`?next=`, same origin only).

const EN = {
  subtitle: 'Command room · sign in to work',
  username: 'User name',
  password: 'Password',
  signin: 'Sign in',
  wrong: 'Wrong user name or password.',
  wait: (s) => `Too many failed attempts: try again in ${s} s.`,
  failed: 'Sign-in failed: ',
};
const ID = {
  wrong: 'Nama pengguna atau kata sandi salah.',
  wait: (s) => `Terlalu banyak percobaan gagal: coba lagi dalam ${s} detik.`,
  failed: 'Gagal masuk: ',
};

const params = new URLSearchParams(location.search);
const en = params.get('lang') === 'en';
const T = en ? EN : ID;
if (en) {
  document.documentElement.lang = 'en';
  for (const el of document.querySelectorAll('[data-t]')) {
    const v = EN[el.dataset.t];
    if (typeof v === 'string') el.textContent = v;
  }
  const l = document.getElementById('lang');
  l.textContent = 'Bahasa Indonesia';
  params.delete('lang');
  l.href = '?' + params.toString();
} else {
  const l = document.getElementById('lang');
  const p = new URLSearchParams(location.search);
  p.set('lang', 'en');
  l.href = '?' + p.toString();
}

/** Where to go after signing in: a path on this server only. */
function nextPath() {
  const n = params.get('next') || '/';
  return n.startsWith('/') && !n.startsWith('//') ? n : '/';
}

const form = document.getElementById('login');
const message = document.getElementById('message');
const submit = document.getElementById('submit');

function show(text) {
  message.textContent = text;
  message.hidden = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  submit.disabled = true;
  message.hidden = true;
  try {
    const r = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        username: document.getElementById('username').value,
        password: document.getElementById('password').value,
      }),
    });
    if (r.ok) {
      location.replace(nextPath());
      return;
    }
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) show(T.wrong);
    else if (r.status === 429) show(T.wait(r.headers.get('retry-after') || '?'));
    else show(T.failed + (body.error || r.status));
  } catch (e) {
    show(T.failed + e.message);
  } finally {
    submit.disabled = false;
  }
});
