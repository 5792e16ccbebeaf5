// Runs table: every job, newest first, refreshed every second; filter by
// status (server side) and plugin/id/experiment text (in the page); pick
// runs with the checkboxes to compare them.

import { api } from './api.js';
import { clear, h, progressBar, statusBadge, when } from './dom.js';

const STATUSES = ['', 'running', 'queued', 'complete', 'failed', 'cancelled', 'interrupted'];

export function selected() {
  try { return new Set(JSON.parse(sessionStorage.getItem('labhost.selected') || '[]')); } catch { return new Set(); }
}
function saveSelected(set) {
  sessionStorage.setItem('labhost.selected', JSON.stringify([...set]));
}

export function runsPage(main) {
  const picked = selected();
  const status = h('select', { id: 'filter-status', 'aria-label': 'status' },
    STATUSES.map(s => h('option', { value: s }, s || 'any status')));
  const text = h('input', { type: 'text', id: 'filter-text', placeholder: 'plugin, id or experiment', 'aria-label': 'search' });
  const compare = h('button', { id: 'compare', class: 'primary' }, 'Compare selected');
  const count = h('span', { class: 'muted', id: 'runs-count' });
  const err = h('p', { class: 'error' });
  const tbody = h('tbody', { id: 'runs-body' });
  const table = h('table', { id: 'runs' },
    h('thead', {}, h('tr', {},
      ['', 'Job', 'Plugin', 'Experiment', 'Status', 'Progress', 'Stage', 'Created', 'Message'].map(t => h('th', {}, t)))),
    tbody);
  main.append(h('h1', {}, 'Runs'),
    h('div', { class: 'toolbar' }, status, text, compare, count), err, table);

  const updateCompare = () => {
    compare.disabled = picked.size < 1;
    compare.textContent = `Compare selected (${picked.size})`;
  };
  compare.addEventListener('click', () => {
    location.hash = '#/compare?ids=' + [...picked].map(encodeURIComponent).join(',');
  });
  updateCompare();

  let jobs = [];
  let total = 0;
  const render = () => {
    const q = text.value.trim().toLowerCase();
    const shown = jobs.filter(j => !q ||
      [j.plugin && j.plugin.name, j.id, j.experiment].some(s => String(s || '').toLowerCase().includes(q)));
    count.textContent = `${shown.length} shown of ${total}`;
    clear(tbody);
    for (const j of shown) {
      const box = h('input', {
        type: 'checkbox', class: 'pick', 'aria-label': 'select ' + j.id,
        checked: picked.has(j.id), dataset: { id: j.id },
      });
      box.addEventListener('change', () => {
        if (box.checked) picked.add(j.id); else picked.delete(j.id);
        saveSelected(picked);
        updateCompare();
      });
      const stage = j.status_stage ? j.status_stage.status : (j.stage || '');
      tbody.append(h('tr', { dataset: { id: j.id, status: j.status } },
        h('td', {}, box),
        h('td', { class: 'id' }, h('a', { href: '#/jobs/' + encodeURIComponent(j.id) }, j.id)),
        h('td', {}, j.plugin ? j.plugin.name : ''),
        h('td', {}, j.experiment || ''),
        h('td', {}, statusBadge(j.status)),
        h('td', {}, progressBar(j.progress), `${Math.round(j.progress || 0)}%`),
        h('td', {}, stage),
        h('td', {}, when(j.created_at)),
        h('td', { class: 'msg', title: j.message || '' }, j.message || '')));
    }
  };
  text.addEventListener('input', render);

  let stopped = false;
  let timer = null;
  const poll = async () => {
    try {
      const params = new URLSearchParams({ sort: '-created', limit: '500' });
      if (status.value) params.set('status', status.value);
      const page = await api('/jobs?' + params);
      if (stopped) return;
      jobs = page.jobs;
      total = page.total;
      err.textContent = '';
      render();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
    if (!stopped) timer = setTimeout(poll, 1000);
  };
  status.addEventListener('change', () => { clearTimeout(timer); poll(); });
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}
