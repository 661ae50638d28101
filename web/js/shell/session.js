// Who is watching: `GET /api/me` at start. A signed-in user is shown in a
// small chip with a logout button; the loopback wall (`anonymous: true`) and
// a wall display (`display: true`, its long-lived session) get no chip.
// A 401 sends the page to the login page (api.js). The answer:
// `{"username": str|null, "roles": [str], "display": bool, "anonymous": bool, "may": {...}}`.

import { get, post } from '../api.js';
import { h } from '../dom.js';

const ANONYMOUS = Object.freeze({ username: null, roles: ['wall'], display: false, anonymous: true, may: {} });

/** The user, with `anonymous: true` when nobody signed in. Rejects (e.login) on a 401. */
export async function whoAmI() {
  let me;
  try {
    me = await get('/api/me');
  } catch (e) {
    if (e.login) throw e;
    // 404: no auth on this server yet. Anything else (a restart, a network
    // blip) must not keep a wall dark: the server guards the data anyway.
    if (e.status !== 404) console.warn(`kendali: /api/me failed (${e.message}); going on as the anonymous wall`);
    return ANONYMOUS;
  }
  if (!me || typeof me !== 'object' || me.anonymous || !me.username) return { ...ANONYMOUS, ...(me || {}), anonymous: true };
  return { ...me, anonymous: false, role: (me.roles || []).join(', ') };
}

/** Ends the session, then goes to the login page. */
export async function logout() {
  try {
    await post('/api/logout');
  } catch (e) {
    if (e.login) return; // already signed out: api.js is on its way to the login page
    console.warn(`kendali: logout: ${e.message}`);
  }
  location.assign('/login');
}

/** The user chip (name, logout button) for a signed-in user; null when anonymous. */
export function userChip(me, i18n) {
  if (me.anonymous || me.display) return null;
  const button = h('button', { type: 'button', class: 'logout' }, i18n.t('logout'));
  button.addEventListener('click', () => {
    button.disabled = true;
    logout();
  });
  const name = h('span', { class: 'user-name', title: me.role || '' }, me.username);
  return h('div', { class: 'user-chip', 'data-role': me.role || '' }, name, button);
}
