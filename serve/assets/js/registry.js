// Models and datasets: the registries' records (GET /api/v1/models,
// /api/v1/datasets) with their files for download, and a dataset's row
// browser over GET /api/v1/datasets/{id}/rows (filters `FIELD OP VALUE`,
// order by a column, paging; the query engine runs on the server). Names,
// descriptions, metadata and cells are guest- or uploader-controlled: all
// are text nodes.

import { api, enc } from './api.js';
import { clear, h, jsonText, when } from './dom.js';

const OPS = ['=', '<>', '<', '<=', '>', '>=', 'LIKE', 'ILIKE', 'NOT LIKE', 'NOT ILIKE', 'IS NULL', 'IS NOT NULL'];

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** Download links for each file of a registry entry. */
function fileLinks(kind, rec) {
  const files = (rec.files && rec.files.files) || [];
  const base = `/api/v1/${kind}/${enc(rec.id)}/files/`;
  return h('ul', { class: 'files' }, files.filter(f => f.path).map(f =>
    h('li', {}, h('a', { href: base + f.path.split('/').map(enc).join('/'), download: f.path.split('/').pop() }, f.path),
      ` ${size(f.size)}`)));
}

function jobLink(id) {
  return id ? h('a', { href: '#/jobs/' + enc(id) }, id) : '—';
}

/** A table of registry records with a text filter over every string. */
function registryPage(main, { kind, title, columns }) {
  let stopped = false;
  const err = h('p', { class: 'error', id: `${kind}-error` });
  const text = h('input', { type: 'text', id: `${kind}-filter`, placeholder: 'name, id, job or metadata', 'aria-label': 'filter' });
  const count = h('span', { class: 'muted', id: `${kind}-count` });
  const tbody = h('tbody', { id: `${kind}-body` });
  main.append(h('h1', {}, title), h('div', { class: 'toolbar' }, text, count), err,
    h('table', { id: kind }, h('thead', {}, h('tr', {}, columns.map(([t]) => h('th', {}, t)))), tbody));
  let records = [];
  const render = () => {
    const q = text.value.trim().toLowerCase();
    const shown = records.filter(r => !q || JSON.stringify(r).toLowerCase().includes(q));
    count.textContent = `${shown.length} shown of ${records.length}`;
    clear(tbody);
    for (const r of shown) {
      tbody.append(h('tr', { dataset: { id: r.id, name: r.name } }, columns.map(([, cell]) => h('td', {}, cell(r)))));
    }
    if (!records.length) tbody.append(h('tr', {}, h('td', { class: 'muted', colspan: String(columns.length) }, `No ${kind} yet.`)));
  };
  text.addEventListener('input', render);
  (async () => {
    try {
      const page = await api('/' + kind);
      if (stopped) return;
      // Newest first.
      records = (page[kind] || []).slice().reverse();
      render();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  })();
  return () => { stopped = true; };
}

export function modelsPage(main) {
  return registryPage(main, {
    kind: 'models',
    title: 'Models',
    columns: [
      ['Name', r => h('strong', {}, r.name)],
      ['Id', r => h('code', {}, r.id)],
      ['Architecture', r => [r.architecture || '—', r.pipeline_tag ? ` · ${r.pipeline_tag}` : '']],
      ['Parent', r => r.parent_model || '—'],
      ['Saved by', r => [jobLink(r.job_id), ' ', h('span', { class: 'muted' }, r.experiment)]],
      ['Created', r => when(r.created_at)],
      ['Files', r => fileLinks('models', r)],
      ['Metadata', r => h('pre', { class: 'meta' }, r.metadata && Object.keys(r.metadata).length ? jsonText(r.metadata) : '—')],
    ],
  });
}

export function datasetsPage(main) {
  return registryPage(main, {
    kind: 'datasets',
    title: 'Datasets',
    columns: [
      ['Name', r => [h('strong', {}, r.name), ' ', h('a', { href: '#/datasets/' + enc(r.id), class: 'browse' }, 'browse rows')]],
      ['Id', r => h('code', {}, r.id)],
      ['Rows', r => r.rows === null || r.rows === undefined ? '—' : String(r.rows)],
      ['Description', r => r.description || '—'],
      ['Saved by', r => [jobLink(r.job_id), ' ', h('span', { class: 'muted' }, r.experiment)]],
      ['Created', r => when(r.created_at)],
      ['Files', r => fileLinks('datasets', r)],
      ['Metadata', r => h('pre', { class: 'meta' }, r.metadata && Object.keys(r.metadata).length ? jsonText(r.metadata) : '—')],
    ],
  });
}

/** One dataset's rows: filters, order, paging, all by the server. */
export function datasetRowsPage(main, id) {
  let stopped = false;
  let seq = 0;
  const state = { filters: [], order: null, desc: false, offset: 0, limit: 25 };
  let columns = [];

  const err = h('p', { class: 'error', id: 'rows-error' });
  const about = h('p', { class: 'muted', id: 'rows-about' });
  const field = h('select', { id: 'rows-field', 'aria-label': 'column' });
  const op = h('select', { id: 'rows-op', 'aria-label': 'operator' }, OPS.map(o => h('option', { value: o }, o)));
  const value = h('input', { type: 'text', id: 'rows-value', placeholder: 'value (% for LIKE)', 'aria-label': 'value' });
  const add = h('button', { type: 'submit', id: 'rows-add' }, 'Add filter');
  const chips = h('span', { id: 'rows-filters', class: 'chips' });
  const limit = h('select', { id: 'rows-limit', 'aria-label': 'rows per page' },
    [10, 25, 50, 100].map(n => h('option', { value: String(n) }, `${n} per page`)));
  limit.value = String(state.limit);
  const thead = h('thead');
  const tbody = h('tbody', { id: 'rows-body' });
  const table = h('table', { class: 'eval', id: 'rows-table' }, thead, tbody);
  const prev = h('button', { type: 'button', id: 'rows-prev' }, '← previous');
  const next = h('button', { type: 'button', id: 'rows-next' }, 'next →');
  const summary = h('span', { class: 'muted', id: 'rows-summary' });
  const form = h('form', { class: 'toolbar', id: 'rows-filter-form' }, 'Filter ', field, op, value, add, limit);
  main.append(h('h1', {}, 'Dataset ', h('code', {}, id)), about, err,
    h('div', { class: 'card' }, form, h('div', { class: 'toolbar' }, chips), table,
      h('div', { class: 'pager' }, prev, next, summary)),
    h('p', {}, h('a', { href: '#/datasets' }, '← all datasets')));

  op.addEventListener('change', () => { value.disabled = op.value.startsWith('IS '); });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!field.value) return;
    const f = { field: field.value, operator: op.value };
    if (!op.value.startsWith('IS ')) f.value = value.value;
    state.filters.push(f);
    state.offset = 0;
    value.value = '';
    load();
  });
  limit.addEventListener('change', () => { state.limit = Number(limit.value); state.offset = 0; load(); });
  prev.addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
  next.addEventListener('click', () => { state.offset += state.limit; load(); });

  const showFilters = () => {
    clear(chips);
    state.filters.forEach((f, i) => {
      const x = h('button', { type: 'button', class: 'chip', title: 'remove this filter', 'aria-label': 'remove filter' },
        `${f.field} ${f.operator}${f.value === undefined ? '' : ' ' + f.value} ✕`);
      x.addEventListener('click', () => { state.filters.splice(i, 1); state.offset = 0; load(); });
      chips.append(x);
    });
  };

  async function load() {
    const my = ++seq;
    showFilters();
    const params = new URLSearchParams({ max_items: String(state.limit), offset: String(state.offset) });
    for (const f of state.filters) params.append('filter', `${f.field} ${f.operator}${f.value === undefined ? '' : ' ' + f.value}`);
    if (state.order) params.append('order_by', `${state.order} ${state.desc ? 'DESC' : 'ASC'}`);
    table.dataset.loading = '1';
    try {
      const page = await api(`/datasets/${enc(id)}/rows?${params}`);
      if (stopped || my !== seq) return;
      err.textContent = '';
      render(page);
    } catch (e) {
      if (stopped || my !== seq) return;
      err.textContent = String(e.message || e);
      // A refused filter is dropped again so the table stays usable.
      if (e.message && e.message.startsWith('400') && state.filters.length) { state.filters.pop(); showFilters(); }
    } finally {
      if (my === seq) delete table.dataset.loading;
    }
  }

  function render(page) {
    if (!columns.length || columns.map(c => c.name).join() !== page.columns.map(c => c.name).join()) {
      columns = page.columns;
      clear(field);
      for (const c of columns) field.append(h('option', { value: c.name }, `${c.name} (${c.type})`));
    }
    clear(thead).append(h('tr', {}, columns.map(c => {
      const b = h('button', { type: 'button', title: `order by ${c.name}` }, c.name);
      b.addEventListener('click', () => {
        if (state.order === c.name) state.desc = !state.desc; else { state.order = c.name; state.desc = false; }
        state.offset = 0;
        load();
      });
      const sort = state.order === c.name ? (state.desc ? 'descending' : 'ascending') : null;
      return h('th', { dataset: { col: c.name }, 'aria-sort': sort }, b);
    })));
    clear(tbody);
    for (const row of page.rows) {
      tbody.append(h('tr', {}, columns.map(c => {
        const v = row[c.name];
        if (v === null || v === undefined) return h('td', { class: 'null', dataset: { col: c.name } }, '—');
        return h('td', { dataset: { col: c.name } }, typeof v === 'string' ? v : JSON.stringify(v));
      })));
    }
    if (!page.rows.length) tbody.append(h('tr', {}, h('td', { class: 'muted', colspan: String(columns.length || 1) }, 'No rows match.')));
    const first = page.rows.length ? state.offset + 1 : 0;
    const last = state.offset + page.rows.length;
    summary.textContent = `rows ${first}–${last} of ${page.total}`;
    table.dataset.total = String(page.total);
    prev.disabled = state.offset === 0;
    next.disabled = last >= page.total;
  }

  (async () => {
    try {
      const rec = await api('/datasets/' + enc(id));
      if (stopped) return;
      about.textContent = `${rec.name} · ${rec.rows ?? '?'} rows · saved by job ${rec.job_id}` + (rec.description ? ` — ${rec.description}` : '');
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  })();
  load();
  return () => { stopped = true; seq++; };
}
