// One run: its record (polled while it runs), a live log tail and metric
// chart fed by the job's Server-Sent Events, its stored files with
// download links, its eval tables, and cancel and rerun buttons.

import { api, enc } from './api.js';
import { clear, h, jsonText, progressBar, statusBadge, when } from './dom.js';
import { StepChart, align } from './chart.js';
import { EvalTables } from './evals.js';

// Minimum-level filter: each source's rank.
const RANK = { trace: 0, debug: 1, info: 2, stdout: 2, host: 2, warn: 3, stderr: 3, error: 4 };
const LEVELS = [['0', 'all'], ['1', 'debug and up'], ['2', 'info and up'], ['3', 'warnings and errors'], ['4', 'errors only']];
const MAX_LINES = 5000;

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function runPage(main, id) {
  let stopped = false;
  let rec = null;
  let timer = null;
  let es = null;

  const title = h('h1', {}, 'Job ', h('code', {}, id), ' ');
  const badge = h('span', { id: 'run-status' });
  const cancel = h('button', { id: 'cancel', class: 'danger', disabled: true }, 'Cancel');
  const rerun = h('button', { id: 'rerun', type: 'button', title: 'run again with the same plugin, config, grants and limits' }, 'Rerun');
  const note = h('span', { class: 'muted', id: 'action-note' });
  const err = h('p', { class: 'error', id: 'run-error' });
  title.append(badge);

  const summary = h('dl', { class: 'kv', id: 'run-summary' });
  const bar = h('div', { id: 'run-progress' });
  const config = h('pre', { id: 'run-config' });
  const metadata = h('pre', { id: 'run-metadata' });
  const files = h('div', { id: 'run-files' });
  const evals = new EvalTables(id);
  const evalCard = h('div', { class: 'card', id: 'eval-card', hidden: true }, h('h2', {}, 'Eval tables'), evals.el);

  const metricSelect = h('select', { id: 'metric-select', 'aria-label': 'metric' });
  const chartEl = h('div', { class: 'chart', id: 'metric-chart' });
  const chartNote = h('p', { class: 'muted' }, 'No metric points yet.');
  const levelSelect = h('select', { id: 'log-level', 'aria-label': 'log level' },
    LEVELS.map(([v, t]) => h('option', { value: v }, t)));
  const logEl = h('div', { class: 'log', id: 'log' });
  const logCount = h('span', { class: 'muted', id: 'log-count' });

  main.append(title,
    h('div', { class: 'toolbar' }, cancel, rerun, note, h('a', { href: '#/' }, '← all runs')),
    err,
    h('div', { class: 'card' }, h('h2', {}, 'Status'), bar, summary),
    h('div', { class: 'card' }, h('h2', {}, 'Metrics'),
      h('div', { class: 'toolbar' }, h('label', {}, 'Metric ', metricSelect)), chartNote, chartEl),
    h('div', { class: 'card' }, h('h2', {}, 'Log'),
      h('div', { class: 'toolbar' }, h('label', {}, 'Level ', levelSelect), logCount), logEl),
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('h2', {}, 'Config'), config),
      h('div', { class: 'card' }, h('h2', {}, 'Metadata'), metadata)),
    evalCard,
    h('div', { class: 'card' }, h('h2', {}, 'Artifacts, checkpoints and evals'), files));

  // ---- the record --------------------------------------------------------
  const showRecord = (r) => {
    rec = r;
    clear(badge).append(statusBadge(r.status));
    const terminal = !['RUNNING', 'QUEUED'].includes(r.status);
    if (terminal) cancel.disabled = true;
    else if (!cancel.dataset.requested) cancel.disabled = false;
    clear(bar).append(progressBar(r.progress, true), `${(r.progress || 0).toFixed(1)}%`, r.stage ? ` — ${r.stage}` : '');
    const rows = [
      ['Plugin', `${r.plugin.name} ${r.plugin.version} (${r.plugin.kind})`],
      ['Experiment', r.experiment],
      ['Status stage', r.status_stage ? r.status_stage.status + (r.status_stage.error_message ? `: ${r.status_stage.error_message}` : '') : '—'],
      ['Message', r.message || '—'],
      ['Failure', r.failure ? JSON.stringify(r.failure) : null],
      ['Scores', Object.keys(r.scores || {}).length ? Object.entries(r.scores).map(([k, v]) => `${k}=${v}`).join(', ') : null],
      ['Created', when(r.created_at)],
      ['Started', when(r.started_at)],
      ['Ended', when(r.ended_at)],
    ];
    clear(summary);
    for (const [k, v] of rows) if (v !== null) summary.append(h('dt', {}, k), h('dd', { dataset: { key: k } }, v));
    config.textContent = jsonText(r.config);
    metadata.textContent = r.metadata && Object.keys(r.metadata).length ? jsonText(r.metadata) : '—';
    showFiles(r);
    evalCard.hidden = !(r.evals && r.evals.length);
    evals.update(r.evals || []);
  };

  const showFiles = (r) => {
    clear(files);
    const groups = [['artifacts', r.artifacts], ['checkpoints', r.checkpoints], ['evals', (r.evals || []).map(e => e.file)]];
    let any = false;
    for (const [kind, list] of groups) {
      if (!list || !list.length) continue;
      any = true;
      const ul = h('ul', { class: 'files', dataset: { kind } });
      for (const s of list) {
        const base = `/api/v1/jobs/${enc(r.id)}/files/${kind}/${enc(s.name)}`;
        if (!s.is_dir) {
          ul.append(h('li', {}, h('a', { href: base, download: s.name }, s.name), ` ${size(s.size)}`));
        } else {
          ul.append(h('li', {}, `${s.name}/ (${s.files.length} files, ${size(s.size)})`,
            h('ul', { class: 'files' }, s.files.map(f =>
              h('li', {}, h('a', { href: `${base}?path=${enc(f.path)}`, download: f.path.split('/').pop() }, f.path), ` ${size(f.size)}`)))));
        }
      }
      files.append(h('h2', {}, kind), ul);
    }
    if (!any) files.append(h('p', { class: 'muted' }, 'Nothing stored yet.'));
  };

  const poll = async () => {
    try {
      const r = await api('/jobs/' + enc(id));
      if (stopped) return;
      showRecord(r);
      err.textContent = '';
      if (['RUNNING', 'QUEUED'].includes(r.status)) timer = setTimeout(poll, 1000);
    } catch (e) {
      err.textContent = String(e.message || e);
      if (!stopped) timer = setTimeout(poll, 2000);
    }
  };
  poll();

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    cancel.dataset.requested = '1';
    try {
      await api('/jobs/' + enc(id) + '/cancel', { method: 'POST' });
      note.textContent = 'cancel requested';
    } catch (e) {
      note.textContent = String(e.message || e);
    }
    clearTimeout(timer);
    poll();
  });

  rerun.addEventListener('click', async () => {
    rerun.disabled = true;
    note.textContent = '';
    try {
      const again = await api('/jobs/' + enc(id) + '/rerun', { method: 'POST' });
      location.hash = '#/jobs/' + enc(again.id);
    } catch (e) {
      note.textContent = String(e.message || e);
      rerun.disabled = false;
    }
  });

  // ---- the live log ------------------------------------------------------
  let lines = 0;
  const applyLevel = (line) => {
    line.hidden = (RANK[line.dataset.source] ?? 2) < Number(levelSelect.value);
  };
  levelSelect.addEventListener('change', () => { for (const l of logEl.children) applyLevel(l); });
  const addLog = (e) => {
    const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 8;
    const line = h('div', { class: 'line l-' + e.source, dataset: { source: e.source } },
      h('span', { class: 'src' }, e.source), e.message);
    applyLevel(line);
    logEl.append(line);
    lines++;
    while (logEl.childElementCount > MAX_LINES) logEl.firstElementChild.remove();
    logCount.textContent = `${lines} lines` + (lines > MAX_LINES ? ` (last ${MAX_LINES} shown)` : '');
    if (atBottom) logEl.scrollTop = logEl.scrollHeight;
  };

  // ---- the live chart ----------------------------------------------------
  const series = new Map(); // name -> [{x, y}]
  const chart = new StepChart(chartEl);
  let pending = false;
  const draw = () => {
    pending = false;
    const name = metricSelect.value;
    const pts = series.get(name);
    if (!pts || !pts.length) return;
    chartNote.hidden = true;
    chart.set([name], align([pts]));
  };
  const schedule = () => {
    if (!pending) { pending = true; setTimeout(draw, 100); }
  };
  metricSelect.addEventListener('change', () => { chart.labels = null; draw(); });
  const addMetric = (e) => {
    let pts = series.get(e.name);
    if (!pts) {
      pts = [];
      series.set(e.name, pts);
      metricSelect.append(h('option', { value: e.name }, e.name));
      if (series.size === 1) metricSelect.value = e.name;
    }
    pts.push({ x: e.step ?? pts.length, y: e.value });
    if (e.name === metricSelect.value) schedule();
  };

  // ---- events ------------------------------------------------------------
  const reset = () => {
    clear(logEl); lines = 0;
    series.clear(); clear(metricSelect);
  };
  const connect = () => {
    reset();
    es = new EventSource('/api/v1/jobs/' + enc(id) + '/events');
    es.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch { return; }
      switch (e.event) {
        case 'log': addLog(e); break;
        case 'metric': addMetric(e); break;
        case 'progress':
          if (rec) { rec.progress = e.percent; rec.stage = e.stage; showRecord(rec); }
          break;
        case 'stored': case 'status': clearTimeout(timer); poll(); break;
        case 'ended':
          es.close(); es = null;
          logEl.dataset.ended = e.status;
          clearTimeout(timer); poll();
          break;
      }
    };
    // The stream restarts from the beginning when reconnected: start over
    // (the server ends the stream only after `ended`).
    es.onerror = () => {
      if (!es) return;
      es.close(); es = null;
      if (!stopped) setTimeout(() => { if (!stopped) connect(); }, 2000);
    };
  };
  connect();

  return () => {
    stopped = true;
    clearTimeout(timer);
    if (es) es.close();
    chart.destroy();
    evals.destroy();
  };
}
