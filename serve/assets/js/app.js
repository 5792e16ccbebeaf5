// The dashboard: a hash router over four pages. Each page's render()
// returns a cleanup function (timers, EventSources) run when leaving it.

import { clear, h } from './dom.js';
import { runsPage } from './runs.js';
import { runPage } from './run.js';
import { comparePage } from './compare.js';
import { launchPage } from './launch.js';

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

window.addEventListener('hashchange', route);
route();
