// JSON calls to this server, for screens that act (a console's buttons) as
// well as watch: same-origin credentials (the session cookie), a JSON body,
// and failures as an `ApiError` carrying the server's `{"error", "status"}`
// answer and, when the server sent one (a 429), its `Retry-After` in
// seconds as `retryAfter`. A 401 means the session is gone: the page goes
// to the login page, which brings the user back here
// (`/login?next=<path and query>`).

export class ApiError extends Error {
  /** `status`: HTTP status (0: no answer); `body`: the parsed answer, if any. */
  constructor(status, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    /** True when the page is on its way to the login page. */
    this.login = false;
    /** The answer's `Retry-After`, seconds (null when it had none). */
    this.retryAfter = null;
  }
}

/** A `Retry-After` value in seconds from now: delta-seconds or an HTTP date; null when absent or unreadable. */
function retryAfterS(value) {
  if (value == null || !value.trim()) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : null;
}

/** The login page's URL, coming back to this page afterwards. */
export function loginUrl() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/** Leaves for the login page. */
export function toLogin() {
  location.assign(loginUrl());
}

/** Why this screen may not act (a replay), or null. */
let readOnly = null;

/** From now on every call but a GET is refused with `reason` (a replay is read-only). */
export function setReadOnly(reason) {
  readOnly = reason;
}

/**
 * One call: `method` and `path` (same origin), `body` sent as JSON when
 * given. Resolves to the parsed JSON answer (null when empty); rejects with
 * an ApiError on a network failure or a status other than 2xx.
 */
export async function api(method, path, body) {
  // Refused as the server refuses what one may not do (403): not retried, and said.
  if (readOnly && method !== 'GET') throw new ApiError(403, readOnly, { error: readOnly, status: 403 });
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: no answer (${e && e.message ? e.message : e})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      if (res.ok) throw new ApiError(res.status, `${method} ${path}: an answer that is not JSON`);
    }
  }
  if (res.ok) return data;
  const message = (data && typeof data.error === 'string' && data.error) || `${method} ${path}: HTTP ${res.status}`;
  const err = new ApiError(res.status, message, data);
  err.retryAfter = retryAfterS(res.headers.get('Retry-After'));
  if (res.status === 401) {
    err.login = true;
    toLogin();
  }
  throw err;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);
