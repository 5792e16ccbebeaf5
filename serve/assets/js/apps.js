// Apps (GET /api/v1/apps, polled every second): each deployed predictor
// with its pool (instance jobs, their state and replacements) and its
// request figures — p50/p99 latency, requests per second, answers,
// timeouts, crashes and 429s. Names and messages come from the server: all
// are text nodes.

import { api } from './api.js';
import { clear, h } from './dom.js';

const ms = (v) => (v === null || v === undefined ? '—' : `${v.toFixed(2)} ms`);

export function appsPage(main) {
  const err = h('p', { class: 'error' });
  const tbody = h('tbody', { id: 'apps-body' });
  main.append(h('h1', {}, 'Apps'), err,
    h('table', { id: 'apps' },
      h('thead', {}, h('tr', {}, ['App', 'Plugin', 'Instances', 'Queued', 'In flight', 'OK', 'Failed', 'Timeouts', 'Crashes', '429', 'p50', 'p99', 'Req/s', 'Pool']
        .map(t => h('th', {}, t)))),
      tbody));
  let stopped = false;
  let timer = null;
  const poll = async () => {
    try {
      const apps = await api('/apps');
      if (stopped) return;
      err.textContent = '';
      clear(tbody);
      for (const a of apps) {
        const s = a.stats;
        const pool = h('ul', { class: 'pool' }, a.pool.map(i =>
          h('li', { dataset: { state: i.state } },
            i.job ? h('a', { href: '#/jobs/' + encodeURIComponent(i.job) }, i.job) : '—',
            ` ${i.state}`, i.restarts ? ` · ${i.restarts} replaced` : '',
            i.last_end ? h('span', { class: 'muted' }, ` · last: ${i.last_end}`) : '')));
        tbody.append(h('tr', { dataset: { name: a.name } },
          h('td', { class: 'id' }, a.name),
          h('td', {}, a.plugin),
          h('td', {}, String(a.instances)),
          h('td', {}, `${a.queued} / ${a.queue}`),
          h('td', {}, String(a.serving)),
          h('td', { class: 'ok' }, String(s.requests_ok)),
          h('td', {}, String(s.requests_failed)),
          h('td', {}, String(s.timeouts)),
          h('td', {}, String(s.crashes)),
          h('td', {}, String(s.rejected)),
          h('td', { class: 'p50' }, ms(s.latency_p50_ms)),
          h('td', { class: 'p99' }, ms(s.latency_p99_ms)),
          h('td', { class: 'rate' }, s.requests_per_second.toFixed(1)),
          h('td', {}, pool)));
      }
      if (!apps.length) tbody.append(h('tr', {}, h('td', { class: 'muted', colspan: '14' }, 'No apps deployed (labhost app deploy NAME PLUGIN).')));
    } catch (e) {
      if (!stopped) err.textContent = String(e.message || e);
    }
    if (!stopped) timer = setTimeout(poll, 1000);
  };
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}
