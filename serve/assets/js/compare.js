// Compare: one metric, picked from those the runs recorded, overlaid
// across the selected runs in one chart (a series per run).

import { api, enc } from './api.js';
import { clear, h, statusBadge } from './dom.js';
import { StepChart, align } from './chart.js';
import { selected } from './runs.js';

export function comparePage(main, ids) {
  if (!ids.length) ids = [...selected()];
  let stopped = false;
  const err = h('p', { class: 'error', id: 'compare-error' });
  const select = h('select', { id: 'compare-metric', 'aria-label': 'metric' });
  const list = h('ul', { id: 'compare-runs' });
  const chartEl = h('div', { class: 'chart', id: 'compare-chart' });
  main.append(h('h1', {}, 'Compare runs'), err,
    h('div', { class: 'card' }, h('h2', {}, 'Runs'), list),
    h('div', { class: 'card' }, h('div', { class: 'toolbar' }, h('label', {}, 'Metric ', select)), chartEl));
  if (!ids.length) {
    list.append(h('li', { class: 'muted' }, 'No runs selected: pick some with the checkboxes of the runs table.'));
    return () => {};
  }
  const chart = new StepChart(chartEl, 320);
  let runs = [];

  const draw = async () => {
    const name = select.value;
    if (!name) return;
    try {
      const per = await Promise.all(runs.map(r =>
        api(`/jobs/${enc(r.id)}/metrics?names=${enc(name)}&max_points=2000`)));
      if (stopped || select.value !== name) return;
      const pts = per.map(points => points.map((p, i) => ({ x: p.step ?? i, y: p.value })));
      chart.set(runs.map(r => `${r.id} ${r.plugin.name}`), align(pts));
      chartEl.dataset.metric = name;
      err.textContent = '';
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  };
  select.addEventListener('change', draw);

  (async () => {
    try {
      runs = await Promise.all(ids.map(id => api('/jobs/' + enc(id))));
      const names = new Set();
      await Promise.all(runs.map(async r => {
        for (const p of await api(`/jobs/${enc(r.id)}/metrics?max_points=1`)) names.add(p.name);
      }));
      if (stopped) return;
      for (const r of runs) {
        list.append(h('li', {}, h('a', { href: '#/jobs/' + enc(r.id) }, r.id), ' ', r.plugin.name, ' ',
          statusBadge(r.status), ' ', r.experiment, r.message ? ` — ${r.message}` : ''));
      }
      const sorted = [...names].sort();
      for (const n of sorted) select.append(h('option', { value: n }, n));
      if (!sorted.length) { chartEl.append(h('p', { class: 'muted' }, 'These runs recorded no metrics.')); return; }
      select.value = sorted.includes('loss') ? 'loss' : sorted[0];
      await draw();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  })();

  return () => { stopped = true; chart.destroy(); };
}
