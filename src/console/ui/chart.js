// A uPlot line chart that follows its container's width.
import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';
import { html } from './util.js';

const COLORS = ['#0b57d0', '#b3261e', '#146c2e', '#7c4dff'];

/** `data`: [times in seconds, ...series]; `labels`: a name for each series. */
export function Chart({ title, labels, data, height = 160 }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(200, box.current.clientWidth);
    plot.current = new uPlot({
      width, height, legend: { show: true, live: false },
      scales: { x: { time: true } },
      axes: [{ stroke: '#444' }, { stroke: '#444', size: 60 }],
      series: [{}, ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
    }, data, box.current);
    const observer = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, box.current.clientWidth), height }));
    observer.observe(box.current);
    return () => { observer.disconnect(); plot.current.destroy(); plot.current = null; };
  }, [labels.join('\u0000')]);
  useEffect(() => { plot.current?.setData(data); }, [data]);
  return html`<figure class="chart"><figcaption>${title}</figcaption><div ref=${box} role="img" aria-label=${`${title} chart`}></div></figure>`;
}

/** A bounded series kept in the page (points: at most `limit`). */
export class Ring {
  constructor(limit = 600) { this.limit = limit; this.t = []; this.v = []; }
  push(t, v) {
    this.t.push(t); this.v.push(v);
    if (this.t.length > this.limit) { this.t.shift(); this.v.shift(); }
  }
}
