// The dashboard: a hash router over its pages. Each page's render()
// returns a cleanup function (timers, EventSources) run when leaving it.
// It starts once the session is known (scope, CSRF token); without one
// (tokens configured, not logged in) api.js sends the browser to /login.

import { clear, h } from './dom.js';
import { logout, session } from './api.js';
import { runsPage } from './runs.js';
import { runPage } from './run.js';
import { comparePage } from './compare.js';
import { launchPage } from './launch.js';
import { datasetRowsPage, datasetsPage, modelsPage } from './registry.js';
import { pipelinePage, pipelinesPage } from './pipelines.js';
import { appsPage } from './apps.js';

const main = document.getElementById('main');
let cleanup = null;

function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } }
  cleanup = null;
  clear(main);
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  let page = 'runs';
  let m;
  try {
    if ((m = path.match(/^\/jobs\/([^/]+)$/))) {
      page = 'runs';
      cleanup = runPage(main, decodeURIComponent(m[1]));
    } else if (path === '/compare') {
      page = 'compare';
      cleanup = comparePage(main, (params.get('ids') || '').split(',').filter(Boolean));
    } else if (path === '/models') {
      page = 'models';
      cleanup = modelsPage(main);
    } else if (path === '/datasets') {
      page = 'datasets';
      cleanup = datasetsPage(main);
    } else if ((m = path.match(/^\/datasets\/([^/]+)$/))) {
      page = 'datasets';
      cleanup = datasetRowsPage(main, decodeURIComponent(m[1]));
    } else if (path === '/pipelines') {
      page = 'pipelines';
      cleanup = pipelinesPage(main);
    } else if ((m = path.match(/^\/pipelines\/([^/]+)$/))) {
      page = 'pipelines';
      cleanup = pipelinePage(main, decodeURIComponent(m[1]));
    } else if (path === '/apps') {
      page = 'apps';
      cleanup = appsPage(main);
    } else if (path === '/launch') {
      page = 'launch';
      cleanup = launchPage(main, params.get('plugin'));
    } else {
      cleanup = runsPage(main);
    }
  } catch (e) {
    main.append(h('p', { class: 'error' }, String(e)));
  }
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', a.dataset.nav === page);
  }
}

/** Who is logged in, and the log-out button. */
function showWho(s) {
  const who = document.getElementById('who');
  clear(who);
  if (s.auth === 'open') {
    who.append(h('span', { id: 'who-scope', dataset: { scope: s.scope } }, `no tokens configured · ${s.scope} access`));
    return;
  }
  who.append(h('span', { id: 'who-scope', dataset: { scope: s.scope } }, `token ${s.token} · ${s.scope}`));
  if (s.auth === 'session') {
    const out = h('button', { id: 'logout', type: 'button' }, 'Log out');
    out.addEventListener('click', () => { out.disabled = true; logout().catch(e => { out.disabled = false; console.error(e); }); });
    who.append(out);
  }
}

(async () => {
  try {
    showWho(await session());
  } catch (e) {
    // 401: on the way to /login.
    clear(main).append(h('p', { class: 'error' }, String(e.message || e)));
    return;
  }
  window.addEventListener('hashchange', route);
  route();
})();
