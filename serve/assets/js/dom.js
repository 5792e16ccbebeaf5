// Building DOM without markup: every string becomes a text node, so
// guest-controlled text (log lines, names, metadata, messages) is never
// parsed as HTML.

/** h('a', {href: '#/', class: 'x', onclick: fn}, 'text', childNode, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function statusBadge(status) {
  return h('span', { class: 'status ' + String(status).replace(/[^A-Z]/g, '') }, String(status));
}

export function progressBar(percent, big) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const fill = h('span');
  fill.style.width = p + '%';
  return h('span', { class: big ? 'bar big' : 'bar' }, fill);
}

export function when(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleString();
}

export function jsonText(v) {
  return JSON.stringify(v, null, 2);
}
