// The REST API, from the browser (same origin). The browser sends the
// session cookie by itself (HttpOnly: this script never sees it); every
// state-changing request also carries the session's CSRF token, which the
// page gets from GET /api/v1/session. With no token configured and a
// loopback bind, there is no session and no token to send.

let current = null;

/** {auth: 'session'|'bearer'|'open', scope, token, csrf, expires_at}. */
export function session() {
  if (!current) {
    current = fetch('/api/v1/session', { headers: { accept: 'application/json' } }).then(async (resp) => {
      if (resp.status === 401) { toLogin(); throw new Error('401: not logged in'); }
      if (!resp.ok) throw new Error(`${resp.status}: ${await resp.text()}`);
      return resp.json();
    });
    current.catch(() => { current = null; });
  }
  return current;
}

function toLogin() {
  if (location.pathname !== '/login') location.assign('/login');
}

export async function api(path, opts = {}) {
  const method = opts.method || 'GET';
  const init = { method, headers: { accept: 'application/json' } };
  if (opts.body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (!['GET', 'HEAD'].includes(method)) {
    const s = await session();
    if (s.csrf) init.headers['x-csrf-token'] = s.csrf;
  }
  const resp = await fetch('/api/v1' + path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const msg = (data && data.error) || text || resp.statusText;
    // The session ended (expired, logged out elsewhere, token revoked).
    if (resp.status === 401) toLogin();
    throw new Error(`${resp.status}: ${msg}`);
  }
  return data;
}

/** End the session and go to the login page. */
export async function logout() {
  const s = await session();
  await fetch('/logout', { method: 'POST', headers: { 'x-csrf-token': s.csrf || '' } });
  current = null;
  location.assign('/login');
}

export const enc = encodeURIComponent;
