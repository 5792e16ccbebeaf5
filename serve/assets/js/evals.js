// A job's eval tables: rows from GET /jobs/{id}/evals/{name}/rows with
// search, a score range, sorting by any column (click its header) and
// paging, done by the server. Scores are coloured from red (0) to green
// (1). Every cell is a text node: eval rows hold guest-controlled text.

import { api, enc } from './api.js';
import { clear, h } from './dom.js';

const FIXED = ['input', 'output', 'expected_output', 'score'];
const LIMITS = [10, 25, 50, 100];

/** Background colour of a score: red at 0, yellow at 0.5, green at 1. */
export function scoreColor(score) {
  const t = Math.max(0, Math.min(1, Number(score)));
  return `hsl(${Math.round(120 * t)}, 70%, 84%)`;
}

function cellText(v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export class EvalTables {
  constructor(jobId) {
    this.jobId = jobId;
    this.names = '';
    this.extras = new Map(); // table -> extra columns seen, in order
    this.state = { name: null, q: '', min: '', max: '', sort: null, desc: false, offset: 0, limit: 25 };
    this.seq = 0;
    this.timer = null;

    this.pick = h('select', { id: 'eval-name', 'aria-label': 'eval table' });
    this.search = h('input', { type: 'search', id: 'eval-search', placeholder: 'search input, output, expected', 'aria-label': 'search rows' });
    this.min = h('input', { type: 'number', step: 'any', id: 'eval-min', placeholder: 'min', 'aria-label': 'minimum score' });
    this.max = h('input', { type: 'number', step: 'any', id: 'eval-max', placeholder: 'max', 'aria-label': 'maximum score' });
    this.limit = h('select', { id: 'eval-limit', 'aria-label': 'rows per page' },
      LIMITS.map(n => h('option', { value: String(n), selected: n === this.state.limit }, `${n} per page`)));
    this.limit.value = String(this.state.limit);
    this.err = h('p', { class: 'error', id: 'eval-error' });
    this.thead = h('thead');
    this.tbody = h('tbody', { id: 'eval-body' });
    this.table = h('table', { class: 'eval', id: 'eval-table' }, this.thead, this.tbody);
    this.prev = h('button', { type: 'button', id: 'eval-prev' }, '← previous');
    this.next = h('button', { type: 'button', id: 'eval-next' }, 'next →');
    this.summary = h('span', { class: 'muted', id: 'eval-summary' });
    this.el = h('div', { class: 'evals', id: 'evals' },
      h('div', { class: 'toolbar' },
        h('label', {}, 'Table ', this.pick), this.search,
        h('label', {}, 'Score ', this.min, ' to ', this.max), this.limit),
      this.err, this.table,
      h('div', { class: 'pager' }, this.prev, this.next, this.summary));

    this.pick.addEventListener('change', () => {
      Object.assign(this.state, { name: this.pick.value, sort: null, desc: false, offset: 0 });
      this.load();
    });
    this.search.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { this.state.q = this.search.value; this.state.offset = 0; this.load(); }, 250);
    });
    for (const [el, key] of [[this.min, 'min'], [this.max, 'max']]) {
      el.addEventListener('change', () => { this.state[key] = el.value.trim(); this.state.offset = 0; this.load(); });
    }
    this.limit.addEventListener('change', () => { this.state.limit = Number(this.limit.value); this.state.offset = 0; this.load(); });
    this.prev.addEventListener('click', () => { this.state.offset = Math.max(0, this.state.offset - this.state.limit); this.load(); });
    this.next.addEventListener('click', () => { this.state.offset += this.state.limit; this.load(); });
  }

  /** The job's eval records changed (a table was stored). */
  update(evals) {
    const names = (evals || []).map(e => `${e.name}\u0000${e.count}`).join('\u0001');
    if (names === this.names) return;
    this.names = names;
    clear(this.pick);
    for (const e of evals) {
      this.pick.append(h('option', { value: e.name },
        `${e.name} (${e.count} rows, mean score ${Number(e.mean_score).toFixed(3)})`));
    }
    if (!evals.some(e => e.name === this.state.name)) this.state.name = evals.length ? evals[0].name : null;
    if (this.state.name) this.pick.value = this.state.name;
    this.load();
  }

  async load() {
    const s = this.state;
    if (!s.name) return;
    const seq = ++this.seq;
    const params = new URLSearchParams({ offset: String(s.offset), limit: String(s.limit) });
    if (s.q) params.set('q', s.q);
    if (s.min !== '') params.set('min_score', s.min);
    if (s.max !== '') params.set('max_score', s.max);
    if (s.sort) params.set('sort', (s.desc ? '-' : '') + s.sort);
    this.table.dataset.loading = '1';
    try {
      const page = await api(`/jobs/${enc(this.jobId)}/evals/${enc(s.name)}/rows?${params}`);
      if (seq !== this.seq) return;
      this.err.textContent = '';
      this.render(page);
    } catch (e) {
      if (seq !== this.seq) return;
      this.err.textContent = String(e.message || e);
    } finally {
      if (seq === this.seq) delete this.table.dataset.loading;
    }
  }

  render(page) {
    const s = this.state;
    let extras = this.extras.get(s.name);
    if (!extras) { extras = []; this.extras.set(s.name, extras); }
    for (const row of page.rows) {
      for (const k of Object.keys(row)) if (!FIXED.includes(k) && !extras.includes(k)) extras.push(k);
    }
    const cols = FIXED.concat(extras);
    clear(this.thead).append(h('tr', {}, cols.map(c => {
      const b = h('button', { type: 'button', title: `sort by ${c}` }, c);
      b.addEventListener('click', () => {
        if (s.sort === c) s.desc = !s.desc; else { s.sort = c; s.desc = false; }
        s.offset = 0;
        this.load();
      });
      const sort = s.sort === c ? (s.desc ? 'descending' : 'ascending') : null;
      return h('th', { dataset: { col: c }, 'aria-sort': sort }, b);
    })));
    clear(this.tbody);
    for (const row of page.rows) {
      this.tbody.append(h('tr', {}, cols.map(c => {
        const v = row[c];
        if (v === null || v === undefined) return h('td', { class: 'null', dataset: { col: c } }, '—');
        if (c === 'score' && typeof v === 'number') {
          const td = h('td', { class: 'score', dataset: { col: c, score: String(v) } }, String(v));
          td.style.backgroundColor = scoreColor(v);
          return td;
        }
        return h('td', { dataset: { col: c } }, cellText(v));
      })));
    }
    if (!page.rows.length) {
      this.tbody.append(h('tr', {}, h('td', { class: 'muted', colspan: String(cols.length) },
        page.total ? 'No rows on this page.' : 'No rows match.')));
    }
    const first = page.rows.length ? s.offset + 1 : 0;
    const last = s.offset + page.rows.length;
    this.summary.textContent = `rows ${first}–${last} of ${page.total}`;
    this.table.dataset.total = String(page.total);
    this.table.dataset.offset = String(s.offset);
    this.prev.disabled = s.offset === 0;
    this.next.disabled = last >= page.total;
  }

  destroy() {
    clearTimeout(this.timer);
    this.seq++;
  }
}
