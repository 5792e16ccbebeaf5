// Launch: pick a plugin, fill the form generated from its typed
// parameters (defaults filled in), submit, and land on the new run.

import { api, enc } from './api.js';
import { clear, h } from './dom.js';

function input(p) {
  const id = 'param-' + p.name;
  const d = p.default;
  switch (p.type) {
    case 'boolean':
      return h('input', { type: 'checkbox', id, name: p.name, checked: d === true });
    case 'integer':
      return h('input', { type: 'number', step: '1', id, name: p.name, value: d ?? '', required: d === null || d === undefined });
    case 'number':
      return h('input', { type: 'number', step: 'any', id, name: p.name, value: d ?? '', required: d === null || d === undefined });
    case 'json':
      return h('textarea', { id, name: p.name, value: d === null || d === undefined ? '' : JSON.stringify(d, null, 2) });
    default:
      return h('input', { type: 'text', id, name: p.name, value: typeof d === 'string' ? d : '', required: d === null || d === undefined });
  }
}

function read(p, el) {
  switch (p.type) {
    case 'boolean': return el.checked;
    case 'integer': {
      const n = Number(el.value);
      if (el.value.trim() === '' || !Number.isInteger(n)) throw new Error(`${p.name}: an integer is needed`);
      return n;
    }
    case 'number': {
      const n = Number(el.value);
      if (el.value.trim() === '' || !Number.isFinite(n)) throw new Error(`${p.name}: a number is needed`);
      return n;
    }
    case 'json':
      try { return JSON.parse(el.value); } catch (e) { throw new Error(`${p.name}: invalid JSON (${e.message})`); }
    default: return el.value;
  }
}

export function launchPage(main, wanted) {
  let stopped = false;
  const err = h('p', { class: 'error', id: 'launch-error' });
  const pick = h('select', { id: 'launch-plugin', 'aria-label': 'plugin' });
  const about = h('p', { class: 'muted', id: 'plugin-about' });
  const fields = h('div', { class: 'form', id: 'launch-fields' });
  const experiment = h('input', { type: 'text', id: 'launch-experiment', value: 'default' });
  const timeout = h('input', { type: 'text', id: 'launch-timeout', placeholder: 'e.g. 10m (settings default)' });
  const datasets = h('input', { type: 'text', id: 'launch-datasets', placeholder: 'ids or names, comma-separated' });
  const models = h('input', { type: 'text', id: 'launch-models', placeholder: 'ids or names, comma-separated' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'launch-submit' }, 'Launch');
  const form = h('form', { id: 'launch-form' },
    h('div', { class: 'card' }, h('div', { class: 'toolbar' }, h('label', {}, 'Plugin ', pick)), about),
    h('div', { class: 'card' }, h('h2', {}, 'Parameters'), fields),
    h('div', { class: 'card' }, h('h2', {}, 'Run'),
      h('div', { class: 'form' },
        h('label', { for: 'launch-experiment' }, 'experiment'), experiment, h('span'),
        h('label', { for: 'launch-datasets' }, 'datasets'), datasets, h('span', { class: 'desc' }, 'granted read-only'),
        h('label', { for: 'launch-models' }, 'models'), models, h('span', { class: 'desc' }, 'granted read-only'),
        h('label', { for: 'launch-timeout' }, 'timeout'), timeout, h('span'))),
    submit);
  main.append(h('h1', {}, 'Launch a job'), err, form);

  let plugins = [];
  let current = null;
  const show = () => {
    current = plugins.find(p => p.blake3 === pick.value);
    clear(fields);
    if (!current) return;
    about.textContent = `${current.kind} · ${current.version} · blake3 ${current.blake3.slice(0, 16)}… — ${current.description}`;
    for (const p of current.params) {
      fields.append(h('label', { for: 'param-' + p.name }, p.name),
        input(p),
        h('span', { class: 'desc' }, `${p.type}${p.default === null || p.default === undefined ? ', required' : ''} — ${p.description}`));
    }
  };
  pick.addEventListener('change', show);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!current) return;
    err.textContent = '';
    try {
      const config = {};
      for (const p of current.params) {
        const el = document.getElementById('param-' + p.name);
        const v = read(p, el);
        // An empty optional text field keeps the plugin's default.
        if (p.type === 'text' && v === '' && p.default !== null && p.default !== undefined && p.default !== '') continue;
        config[p.name] = v;
      }
      const body = { plugin: current.blake3, config, experiment: experiment.value.trim() || undefined };
      const list = (el) => el.value.split(',').map(s => s.trim()).filter(Boolean);
      if (list(datasets).length) body.datasets = list(datasets);
      if (list(models).length) body.models = list(models);
      if (timeout.value.trim()) body.limits = { timeout: timeout.value.trim() };
      submit.disabled = true;
      const rec = await api('/jobs', { method: 'POST', body });
      location.hash = '#/jobs/' + enc(rec.id);
    } catch (e) {
      err.textContent = String(e.message || e);
      submit.disabled = false;
    }
  });

  (async () => {
    try {
      plugins = await api('/plugins');
      if (stopped) return;
      if (!plugins.length) { about.textContent = 'No plugins: upload one (POST /api/v1/plugins) or set paths.plugins.'; return; }
      for (const p of plugins) pick.append(h('option', { value: p.blake3 }, `${p.name} ${p.version}`));
      const w = plugins.find(p => p.blake3 === wanted || p.name === wanted);
      if (w) pick.value = w.blake3;
      show();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  })();
  return () => { stopped = true; };
}
