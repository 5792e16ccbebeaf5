// The REST API, from the browser (same origin). With no token configured
// and a loopback bind, the server needs no header.

export async function api(path, opts = {}) {
  const init = { method: opts.method || 'GET', headers: { accept: 'application/json' } };
  if (opts.body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  const resp = await fetch('/api/v1' + path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    let msg = (data && data.error) || text || resp.statusText;
    if (resp.status === 401) {
      // Logging the dashboard in with a token is not implemented yet: it
      // works where the server runs without tokens on loopback.
      msg += ' — this server has API tokens; the dashboard cannot log in with one yet (use it on a loopback server without tokens)';
    }
    throw new Error(`${resp.status}: ${msg}`);
  }
  return data;
}

export const enc = encodeURIComponent;
