// A uPlot line chart over steps (vendored uPlot, global `uPlot`). The
// container carries data-series / data-points so tests and people can see
// what is drawn.

import { clear } from './dom.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

export class StepChart {
  constructor(container, height = 260) {
    this.el = container;
    this.height = height;
    this.plot = null;
    this.labels = null;
    this.onResize = () => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.height });
    };
    window.addEventListener('resize', this.onResize);
  }

  width() {
    return Math.max(300, (this.el.clientWidth || 600) - 4);
  }

  /** labels: series names; data: [xs, ys1, ys2, …] (nulls for gaps). */
  set(labels, data) {
    const same = this.plot && this.labels && this.labels.length === labels.length &&
      this.labels.every((l, i) => l === labels[i]);
    if (!same) {
      if (this.plot) this.plot.destroy();
      clear(this.el);
      this.labels = labels.slice();
      const opts = {
        width: this.width(),
        height: this.height,
        scales: { x: { time: false } },
        axes: [{ label: 'step' }, {}],
        series: [{ label: 'step' }].concat(labels.map((l, i) => ({
          label: l,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: true,
          points: { show: data[0].length < 60 },
        }))),
      };
      this.plot = new uPlot(opts, data, this.el);
    } else {
      this.plot.setData(data);
    }
    let points = 0;
    for (const ys of data.slice(1)) for (const y of ys) if (y !== null && y !== undefined) points++;
    this.el.dataset.series = String(labels.length);
    this.el.dataset.points = String(points);
  }

  destroy() {
    window.removeEventListener('resize', this.onResize);
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

/** Merge per-series point lists [{x, y}] into uPlot's aligned columns. */
export function align(seriesPoints) {
  const xs = [...new Set(seriesPoints.flatMap(ps => ps.map(p => p.x)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const cols = seriesPoints.map(ps => {
    const ys = new Array(xs.length).fill(null);
    for (const p of ps) ys[index.get(p.x)] = p.y;
    return ys;
  });
  return [xs, ...cols];
}
