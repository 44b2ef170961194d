import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, showError, quietly } from '../api.js';
import { bytes, h, replace } from '../dom.js';

const WINDOW = 120;

/** Host facts, and CPU / memory over time (uPlot), sampled from /metrics every 2 s while the page is open. */
export async function hostPage(main: HTMLElement): Promise<() => void> {
  const facts = h('dl', { class: 'facts' });
  const cpuBox = h('div', { class: 'chart', role: 'img', 'aria-label': 'Host CPU use over time' });
  const memBox = h('div', { class: 'chart', role: 'img', 'aria-label': 'Host memory use over time' });
  const now = h('p', { class: 'muted', role: 'status' });
  replace(main, h('h1', {}, 'Host'), facts, h('h2', {}, 'CPU %'), cpuBox, h('h2', {}, 'Memory used (GiB)'), memBox, now);

  try {
    const host = await api.host();
    const rows: [string, string][] = [
      ['Hostname', host.hostname], ['OS', `${host.os} ${host.kernel}`], ['CPU', `${host.cpus} × ${host.cpuModel}`],
      ['Memory', bytes(host.memoryBytes)], ['Free disk (data)', bytes(host.freeDiskBytes)], ['QEMU', host.qemuVersion ?? '—'],
      ['Accelerator', host.accelerator], ['Grove', host.groveVersion],
    ];
    replace(facts, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  } catch (e) { showError(e); }

  const t: number[] = [];
  const cpu: number[] = [];
  const mem: number[] = [];
  const width = (): number => Math.max(280, main.clientWidth - 32);
  const opts = (label: string, color: string): uPlot.Options => ({
    width: width(), height: 200, series: [{}, { label, stroke: color, fill: `${color}33`, width: 2 }],
    axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor' }], legend: { show: true },
  });
  const cpuChart = new uPlot(opts('CPU %', '#2f80ed'), [t, cpu], cpuBox);
  const memChart = new uPlot(opts('Memory GiB', '#27ae60'), [t, mem], memBox);

  const sample = async (): Promise<void> => {
    try {
      const m = await api.metrics();
      t.push(Date.now() / 1000);
      cpu.push(m.host.cpuPercent);
      mem.push((m.host.memoryBytes - m.host.freeMemoryBytes) / 2 ** 30);
      if (t.length > WINDOW) { t.shift(); cpu.shift(); mem.shift(); }
      cpuChart.setData([t, cpu]);
      memChart.setData([t, mem]);
      now.textContent = `Now: CPU ${m.host.cpuPercent.toFixed(1)}%, memory ${bytes(m.host.memoryBytes - m.host.freeMemoryBytes)} of ${bytes(m.host.memoryBytes)}, load ${m.host.loadAverage.map((l) => l.toFixed(2)).join(' ')}`;
    } catch (e) { showError(e); }
  };
  quietly(sample());
  const timer = setInterval(() => { quietly(sample()); }, 2000);
  const onResize = (): void => { cpuChart.setSize({ width: width(), height: 200 }); memChart.setSize({ width: width(), height: 200 }); };
  addEventListener('resize', onResize);
  return () => { clearInterval(timer); removeEventListener('resize', onResize); cpuChart.destroy(); memChart.destroy(); };
}
