// Pipeline runs: the list (GET /api/v1/pipelines) with Refuel's task-run
// view, and one run's page (GET /api/v1/pipelines/{id}, polled every
// second) with its stage graph: one column per depth of the `needs` graph,
// one box per instance (a fanned-out stage has one per branch) with its
// state, attempts and jobs, and an arrow from each instance it needs.
// Cancel and resume through the API. Names, labels and messages come from
// the pipeline file and the jobs: all are text nodes.

import { api, enc } from './api.js';
import { clear, h, statusBadge, when } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function metric(taskRun, name) {
  const m = (taskRun.metrics || []).find(x => x.name === name);
  return m ? m.value : null;
}

function seconds(s) {
  if (s === null || s === undefined) return '—';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function taskRunCells(t) {
  return [
    h('td', {}, h('span', { class: 'status task ' + t.status }, t.status)),
    h('td', {}, `${metric(t, 'num_labeled') ?? 0} / ${(metric(t, 'num_labeled') ?? 0) + (metric(t, 'num_remaining') ?? 0)}`),
    h('td', {}, seconds(metric(t, 'time_elapsed_seconds'))),
    h('td', {}, seconds(metric(t, 'time_remaining_seconds'))),
  ];
}

export function pipelinesPage(main) {
  const err = h('p', { class: 'error' });
  const tbody = h('tbody', { id: 'pipelines-body' });
  main.append(h('h1', {}, 'Pipeline runs'), err,
    h('table', { id: 'pipelines' },
      h('thead', {}, h('tr', {}, ['Run', 'Pipeline', 'Experiment', 'Status', 'Task run', 'Instances done', 'Elapsed', 'Remaining', 'Created']
        .map(t => h('th', {}, t)))),
      tbody));
  let stopped = false;
  let timer = null;
  const poll = async () => {
    try {
      const page = await api('/pipelines');
      if (stopped) return;
      err.textContent = '';
      clear(tbody);
      for (const { run, task_run: t } of page.runs) {
        tbody.append(h('tr', { dataset: { id: run.id, status: run.status } },
          h('td', { class: 'id' }, h('a', { href: '#/pipelines/' + enc(run.id) }, run.id)),
          h('td', {}, run.pipeline),
          h('td', {}, run.experiment),
          h('td', {}, statusBadge(run.status)),
          taskRunCells(t),
          h('td', {}, when(run.created_at))));
      }
      if (!page.runs.length) tbody.append(h('tr', {}, h('td', { class: 'muted', colspan: '9' }, 'No pipeline runs yet.')));
    } catch (e) {
      err.textContent = String(e.message || e);
    }
    if (!stopped) timer = setTimeout(poll, 1000);
  };
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Depth of each instance in the `needs` graph (0: needs nothing). */
export function depths(instances) {
  const byName = new Map(instances.map(i => [i.name, i]));
  const depth = new Map();
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // a cycle cannot be created; do not loop if one were shown
    seen.add(name);
    const i = byName.get(name);
    const d = i ? Math.max(-1, ...i.needs.filter(n => byName.has(n)).map(n => visit(n, seen))) + 1 : 0;
    depth.set(name, d);
    return d;
  };
  for (const i of instances) visit(i.name, new Set());
  return depth;
}

function instanceBox(i) {
  const last = i.attempts.length ? i.attempts[i.attempts.length - 1] : null;
  const jobs = i.attempts.filter(a => a.job_id).map((a, n) =>
    h('a', { href: '#/jobs/' + enc(a.job_id), title: `${a.job_id}: attempt ${n + 1}, ${a.status}` }, a.job_id.slice(9) || a.job_id));
  return h('div', { class: 'node ' + i.status, dataset: { instance: i.name, status: i.status } },
    h('div', { class: 'node-head' }, h('strong', {}, i.name), statusBadge(i.status)),
    i.label && i.label !== i.name ? h('div', { class: 'muted' }, i.label) : null,
    h('div', { class: 'muted' }, `${i.plugin.name} ${i.plugin.version}`),
    h('div', {}, `attempts: ${i.attempts.length}`, jobs.length ? ' · ' : '', jobs.map((a, n) => [n ? ' ' : '', a])),
    i.message || (last && last.message) ? h('div', { class: 'node-msg', title: i.message || last.message }, i.message || last.message) : null);
}

/** Arrows from each needed instance's box to the instance's box. */
function drawEdges(graph, svg, instances) {
  clear(svg);
  const box = graph.getBoundingClientRect();
  svg.setAttribute('width', String(graph.scrollWidth));
  svg.setAttribute('height', String(graph.scrollHeight));
  const marker = document.createElementNS(SVG, 'marker');
  Object.entries({ id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto' })
    .forEach(([k, v]) => marker.setAttribute(k, v));
  const tip = document.createElementNS(SVG, 'path');
  tip.setAttribute('d', 'M0,0 L10,5 L0,10 z');
  marker.append(tip);
  const defs = document.createElementNS(SVG, 'defs');
  defs.append(marker);
  svg.append(defs);
  const nodes = new Map([...graph.querySelectorAll('.node')].map(n => [n.dataset.instance, n.getBoundingClientRect()]));
  for (const i of instances) {
    const to = nodes.get(i.name);
    for (const need of i.needs) {
      const from = nodes.get(need);
      if (!from || !to) continue;
      const x1 = from.right - box.left + graph.scrollLeft, y1 = from.top + from.height / 2 - box.top + graph.scrollTop;
      const x2 = to.left - box.left + graph.scrollLeft, y2 = to.top + to.height / 2 - box.top + graph.scrollTop;
      const path = document.createElementNS(SVG, 'path');
      const mid = (x1 + x2) / 2;
      path.setAttribute('d', `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
      path.setAttribute('class', 'edge');
      path.setAttribute('marker-end', 'url(#arrow)');
      path.dataset.from = need;
      path.dataset.to = i.name;
      svg.append(path);
    }
  }
}

export function pipelinePage(main, id) {
  const err = h('p', { class: 'error', id: 'pipeline-error' });
  const title = h('h1', {}, 'Pipeline run ', h('code', {}, id));
  const summary = h('dl', { class: 'kv', id: 'pipeline-summary' });
  const cancel = h('button', { class: 'danger', id: 'pipeline-cancel' }, 'Cancel');
  const resume = h('button', { class: 'primary', id: 'pipeline-resume' }, 'Resume');
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'edges');
  const columns = h('div', { class: 'columns' });
  const graph = h('div', { class: 'graph', id: 'stage-graph' }, svg, columns);
  main.append(title, err,
    h('div', { class: 'card' }, h('div', { class: 'toolbar' }, cancel, resume), summary),
    h('div', { class: 'card' }, h('h2', {}, 'Stages'), graph));

  let stopped = false;
  let timer = null;
  let run = null;
  const act = async (what) => {
    cancel.disabled = resume.disabled = true;
    try {
      await api(`/pipelines/${enc(id)}/${what}`, { method: 'POST', body: {} });
      err.textContent = '';
    } catch (e) {
      err.textContent = String(e.message || e);
    }
    clearTimeout(timer);
    poll();
  };
  cancel.addEventListener('click', () => act('cancel'));
  resume.addEventListener('click', () => act('resume'));

  const render = (t) => {
    clear(summary);
    const kv = (k, ...v) => [h('dt', {}, k), h('dd', {}, ...v)];
    summary.append(...kv('Pipeline', run.pipeline), ...kv('Experiment', run.experiment),
      ...kv('Status', statusBadge(run.status), run.message ? ` ${run.message}` : ''),
      ...kv('Task run', h('span', { id: 'task-run-status' }, t.status), ' · ',
        `${metric(t, 'num_labeled') ?? 0} done, ${metric(t, 'num_remaining') ?? 0} remaining`),
      ...kv('Elapsed', seconds(metric(t, 'time_elapsed_seconds'))),
      ...kv('Remaining', seconds(metric(t, 'time_remaining_seconds'))),
      ...kv('Workers', String(run.workers)), ...kv('Resumed', `${run.resumes} times`),
      ...kv('Created', when(run.created_at)), ...kv('Ended', run.ended_at ? when(run.ended_at) : '—'));
    cancel.disabled = run.status !== 'RUNNING';
    resume.disabled = run.status === 'RUNNING' || run.status === 'COMPLETE';
    const depth = depths(run.instances);
    const n = Math.max(0, ...depth.values()) + 1;
    clear(columns);
    for (let d = 0; d < n; d++) {
      columns.append(h('div', { class: 'column', dataset: { depth: String(d) } },
        run.instances.filter(i => depth.get(i.name) === d).map(instanceBox)));
    }
    drawEdges(graph, svg, run.instances);
  };

  const poll = async () => {
    try {
      const data = await api('/pipelines/' + enc(id));
      if (stopped) return;
      run = data.run;
      render(data.task_run);
    } catch (e) {
      if (!stopped) err.textContent = String(e.message || e);
    }
    if (!stopped) timer = setTimeout(poll, 1000);
  };
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}
