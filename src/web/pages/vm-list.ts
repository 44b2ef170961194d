import type { GroveEvent, HostMetrics, Vm } from '../../client/types.js';
import { api, showError, quietly } from '../api.js';
import { bytes, duration, h, replace } from '../dom.js';
import { live } from '../live.js';
import { actionButtons } from './vm-actions.js';

type VmMetrics = HostMetrics['vms'][number];

/** The VM list: rows follow the event stream; CPU and memory figures are polled from /metrics. */
export async function vmListPage(main: HTMLElement): Promise<() => void> {
  const vms = new Map<string, Vm>();
  const metrics = new Map<string, VmMetrics>();
  const rows = new Map<string, HTMLTableRowElement>();
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted', hidden: true }, 'No VMs yet. ', h('a', { href: '#/create' }, 'Create one'), '.');
  replace(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Virtual machines'), h('a', { class: 'button', href: '#/create' }, 'Create VM')),
    empty,
    h('div', { class: 'table-wrap' }, h('table', { class: 'vms', 'aria-label': 'Virtual machines' },
      h('thead', {}, h('tr', {}, ['Name', 'State', 'CPU', 'Memory', 'Uptime', 'IP · ports', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)));

  const cells = (vm: Vm): HTMLElement[] => {
    const m = metrics.get(vm.id);
    const ports = vm.network.portForwards.map((p) => `${p.host}→${p.guest}/${p.protocol}`).join(' ');
    return [
      h('th', { scope: 'row' }, h('a', { href: `#/vm/${encodeURIComponent(vm.id)}` }, vm.name)),
      h('td', { 'data-label': 'State' }, h('span', { class: `state state-${vm.state}`, 'data-state': vm.state }, vm.state)),
      h('td', { 'data-label': 'CPU' }, `${vm.cpu} vCPU`, m?.cpuPercent != null ? h('small', {}, ` ${m.cpuPercent.toFixed(0)}%`) : null),
      h('td', { 'data-label': 'Memory' }, `${vm.memoryMB} MiB`, m?.rssBytes != null ? h('small', {}, ` (${bytes(m.rssBytes)} used)`) : null),
      h('td', { 'data-label': 'Uptime', class: 'uptime' }, vm.state === 'running' || vm.state === 'paused' ? duration(vm.startedAt) : '—'),
      h('td', { 'data-label': 'IP · ports', class: 'ip' }, ports || '—'),
      h('td', { 'data-label': 'Actions' }, actionButtons(vm)),
    ];
  };

  const render = (vm: Vm): void => {
    let row = rows.get(vm.id);
    if (!row) {
      row = h('tr', { 'data-vm': vm.name });
      rows.set(vm.id, row);
    }
    // Unchanged rows are left alone, so a poll does not take the keyboard focus off a button.
    const sig = JSON.stringify([vm, metrics.get(vm.id), vm.state === 'running' ? duration(vm.startedAt) : '']);
    if (row.dataset['sig'] === sig) return;
    row.dataset['sig'] = sig;
    replace(row, cells(vm));
    row.dataset['state'] = vm.state;
  };
  const renderAll = (): void => {
    const sorted = [...vms.values()].sort((a, b) => a.order - b.order);
    for (const vm of sorted) render(vm);
    replace(tbody, sorted.map((vm) => rows.get(vm.id)!));
    empty.hidden = sorted.length > 0;
  };

  const refresh = async (id: string): Promise<void> => {
    try {
      const vm = await api.getVm(id);
      vms.set(vm.id, vm);
      render(vm);
      if (!tbody.contains(rows.get(vm.id)!)) renderAll();
    } catch { /* deleted meanwhile: vm.deleted follows */ }
  };

  const onEvent = (e: GroveEvent): void => {
    if (!e.vmId || !e.type.startsWith('vm.') && !e.type.startsWith('agent.')) return;
    if (e.type === 'vm.deleted') {
      vms.delete(e.vmId); rows.get(e.vmId)?.remove(); rows.delete(e.vmId); renderAll();
      return;
    }
    const known = vms.get(e.vmId);
    const state = (e.data as { state?: Vm['state'] }).state;
    // The state shows at once from the event itself; the rest of the row follows from a fresh read.
    if (known && state) { known.state = state; render(known); }
    quietly(refresh(e.vmId));
  };

  const off = live.on(onEvent);
  live.start();
  try {
    for (const vm of await api.listVms()) vms.set(vm.id, vm);
    renderAll();
    performance.mark('grove:vm-list-painted');
  } catch (e) { showError(e); }

  const poll = async (): Promise<void> => {
    try {
      const m = await api.metrics();
      metrics.clear();
      for (const v of m.vms) metrics.set(v.id, v);
      for (const vm of vms.values()) render(vm);
    } catch { /* the next poll tries again; errors of actions are shown where they happen */ }
  };
  quietly(poll());
  const timer = setInterval(() => { quietly(poll()); }, 5000);
  return () => { off(); clearInterval(timer); };
}
