import type { GroveEvent, Snapshot, Vm } from '../../client/types.js';
import { act, api, showError, wsUrl } from '../api.js';
import { bytes, duration, field, h, replace } from '../dom.js';
import { live } from '../live.js';
import { actionButtons } from './vm-actions.js';
import { screenTab } from './screen.js';
import { terminalTab } from './terminal.js';

type Tab = { el: HTMLElement; dispose: () => void };
const TABS = ['Terminal', 'Screen', 'Snapshots', 'Manage', 'Events', 'Settings'] as const;

/** One VM: header with live state and actions, then tabs (ARIA tab pattern, arrow keys move between tabs). */
export async function vmPage(main: HTMLElement, ref: string, tabName: string | undefined): Promise<() => void> {
  let vm: Vm;
  try { vm = await api.getVm(ref); } catch (e) { showError(e); replace(main, h('p', {}, h('a', { href: '#/vms' }, 'Back to the list'))); return () => undefined; }
  const head = h('div', { class: 'page-head' });
  const info = h('p', { class: 'muted vm-info' });
  const tablist = h('div', { role: 'tablist', 'aria-label': 'VM sections', class: 'tabs' });
  const panel = h('div', { role: 'tabpanel', class: 'panel', tabindex: 0 });
  replace(main, head, info, tablist, panel);

  const renderHead = (): void => {
    replace(head, h('h1', {}, vm.name, ' ', h('span', { class: `state state-${vm.state}`, 'data-state': vm.state }, vm.state)), actionButtons(vm));
    const boot = vm.distro ?? (vm.boot.iso ? `ISO ${vm.boot.iso.split('/').pop()}` : vm.boot.kernel ? 'direct kernel boot' : 'disk boot');
    replace(info, `${vm.cpu} vCPU · ${vm.memoryMB} MiB · ${vm.diskGB} GiB disk · ${boot} · up ${vm.state === 'running' ? duration(vm.startedAt) : '—'}`,
      vm.lastError ? h('span', { class: 'error-text' }, ` · last error: ${vm.lastError}`) : null);
  };
  renderHead();

  let current: Tab | null = null;
  const buttons = TABS.map((t) => h('button', { type: 'button', role: 'tab', id: `tab-${t}`, 'aria-controls': 'vm-panel', 'data-tab': t }, t));
  panel.id = 'vm-panel';
  const select = (t: typeof TABS[number], focus = false): void => {
    current?.dispose();
    for (const b of buttons) {
      const on = b.dataset['tab'] === t;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    }
    panel.setAttribute('aria-labelledby', `tab-${t}`);
    history.replaceState(null, '', `#/vm/${encodeURIComponent(vm.id)}/${t.toLowerCase()}`);
    current = TABS_IMPL[t](vm);
    replace(panel, current.el);
  };
  buttons.forEach((b, i) => {
    b.addEventListener('click', () => select(TABS[i]!));
    b.addEventListener('keydown', (e) => {
      const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (d) select(TABS[(i + d + TABS.length) % TABS.length]!, true);
    });
  });
  replace(tablist, buttons);

  const off = live.on((e) => {
    if (e.vmId !== vm.id) return;
    if (e.type === 'vm.deleted') { location.hash = '#/vms'; return; }
    if (e.type.startsWith('vm.') || e.type.startsWith('snapshot.')) {
      api.getVm(vm.id).then((v) => { vm = v; renderHead(); }).catch(() => undefined);
    }
  });
  live.start();
  const initial = TABS.find((t) => t.toLowerCase() === tabName) ?? 'Terminal';
  select(initial);
  return () => { off(); current?.dispose(); };
}

const TABS_IMPL: Record<typeof TABS[number], (vm: Vm) => Tab> = {
  Terminal: (vm) => terminalTab(vm.id),
  Screen: (vm) => screenTab(vm.id),
  Snapshots: snapshotsTab,
  Manage: manageTab,
  Events: eventsTab,
  Settings: settingsTab,
};

function snapshotsTab(vm: Vm): Tab {
  const list = h('tbody');
  const name = h('input', { name: 'snapshot-name', autocomplete: 'off', placeholder: 'optional' });
  const memory = h('input', { type: 'checkbox', name: 'memory', checked: true });
  const create = h('button', { type: 'submit' }, 'Take snapshot');
  const form = h('form', { class: 'inline-form', 'aria-label': 'Take a snapshot' }, field('Name', name),
    h('label', { class: 'check' }, memory, ' with RAM (live)'), create);
  const load = async (): Promise<void> => {
    const snaps = await api.listSnapshots(vm.id);
    replace(list, snaps.length === 0 ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No snapshots')) : snaps.map((s) => row(s)));
  };
  const row = (s: Snapshot): HTMLElement => {
    const restore = h('button', { type: 'button', 'aria-label': `Restore ${s.name}` }, 'Restore');
    const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${s.name}` }, 'Delete');
    restore.addEventListener('click', () => { act(`Restore ${s.name}`, async () => { await api.restoreSnapshot(vm.id, s.id); await load(); }, restore); });
    del.addEventListener('click', () => { if (confirm(`Delete snapshot ${s.name}?`)) act(`Delete ${s.name}`, async () => { await api.deleteSnapshot(vm.id, s.id); await load(); }, del); });
    return h('tr', { 'data-snapshot': s.name }, h('th', { scope: 'row' }, s.name), h('td', {}, s.kind), h('td', {}, s.vmState),
      h('td', {}, new Date(s.createdAt).toLocaleString()), h('td', {}, h('div', { class: 'actions' }, restore, del)));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act('Take snapshot', async () => {
      await api.createSnapshot(vm.id, { ...(name.value ? { name: name.value } : {}), memory: memory.checked });
      name.value = '';
      await load();
    }, create);
  });
  const off = live.on((e) => { if (e.vmId === vm.id && e.type.startsWith('snapshot.')) load().catch(showError); });
  load().catch(showError);
  const el = h('div', {}, form, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Snapshots' },
    h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Restores to', 'Taken', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))), list)));
  return { el, dispose: off };
}

function manageTab(vm: Vm): Tab {
  const cloneName = h('input', { name: 'clone-name', placeholder: `${vm.name}-clone`, autocomplete: 'off' });
  const cloneBtn = h('button', { type: 'submit' }, 'Clone');
  const clone = h('form', { class: 'card', 'aria-label': 'Clone' }, h('h2', {}, 'Clone'), field('Name of the clone', cloneName), cloneBtn);
  clone.addEventListener('submit', (e) => {
    e.preventDefault();
    act('Clone', async () => { const c = await api.cloneVm(vm.id, cloneName.value ? { name: cloneName.value } : {}); location.hash = `#/vm/${encodeURIComponent(c.id)}`; }, cloneBtn);
  });

  const suspendBtn = h('button', { type: 'button' }, 'Suspend to disk');
  const status = h('p', { class: 'muted' });
  suspendBtn.addEventListener('click', () => { act('Suspend', () => api.suspendVm(vm.id), suspendBtn); });
  api.suspendStatus(vm.id).then((s) => { status.textContent = s.suspended ? `Suspended (${bytes(s.stateBytes)}) — start resumes it` : 'Not suspended'; }).catch(() => undefined);
  const suspend = h('div', { class: 'card' }, h('h2', {}, 'Suspend'), h('p', {}, 'Saves RAM and devices to disk; QEMU exits; the next start resumes exactly there.'), status, suspendBtn);

  const size = h('input', { type: 'number', name: 'sizeGB', min: vm.diskGB, value: vm.diskGB });
  const resizeBtn = h('button', { type: 'submit' }, 'Grow disk');
  const resize = h('form', { class: 'card', 'aria-label': 'Resize disk' }, h('h2', {}, 'Disk'), field('Size (GiB)', size, 'Growing only; online when running'), resizeBtn);
  resize.addEventListener('submit', (e) => { e.preventDefault(); act('Resize disk', () => api.resizeDisk(vm.id, Number(size.value)), resizeBtn); });

  const path = h('input', { name: 'export-path', value: `${vm.name}.tar.gz` });
  const exportBtn = h('button', { type: 'submit' }, 'Export');
  const exportOut = h('p', { class: 'muted', role: 'status' });
  const exp = h('form', { class: 'card', 'aria-label': 'Export' }, h('h2', {}, 'Export'), field('File in the transfer folder', path, 'Config, disks and snapshots as one bundle'), exportBtn, exportOut);
  exp.addEventListener('submit', (e) => {
    e.preventDefault();
    act('Export', async () => {
      const r = await api.request<{ path: string; bytes: number }>('POST', `/vms/${encodeURIComponent(vm.id)}/export`, { body: { path: path.value, compression: path.value.endsWith('.gz') ? 'gzip' : 'none' } });
      exportOut.textContent = `Written: ${r.path} (${bytes(r.bytes)})`;
    }, exportBtn);
  });
  return { el: h('div', { class: 'grid' }, clone, suspend, resize, exp), dispose: () => undefined };
}

function eventsTab(vm: Vm): Tab {
  const list = h('ol', { class: 'events', 'aria-label': `Events of ${vm.name}`, reversed: true });
  const add = (e: GroveEvent): void => {
    if (e.type === 'console.output') return;
    list.prepend(h('li', {}, h('time', { datetime: e.timestamp }, new Date(e.timestamp).toLocaleTimeString()), ' ', h('strong', {}, e.type), ' ',
      h('code', {}, JSON.stringify(e.data).slice(0, 200))));
    while (list.children.length > 300) list.lastElementChild!.remove();
  };
  // Its own stream, replaying this VM's history (since=0) before the live part.
  const note = h('p', { class: 'muted', role: 'status' });
  const ws = new WebSocket(wsUrl('/events', { vm: vm.id, since: '0', types: 'vm.*,snapshot.*,agent.*' }));
  ws.onmessage = (m) => {
    const e = JSON.parse(String(m.data)) as GroveEvent;
    if (typeof e.id === 'number' && e.timestamp) add(e);
  };
  ws.onclose = (c) => { if (c.code !== 1000 && c.code !== 1005) note.textContent = `The event stream closed: ${c.reason || `code ${c.code}`}`; };
  return { el: h('div', {}, note, list), dispose: () => { ws.onclose = null; ws.close(); } };
}

function settingsTab(vm: Vm): Tab {
  const name = h('input', { name: 'name', value: vm.name, required: true });
  const cpu = h('input', { name: 'cpu', type: 'number', min: 1, value: vm.cpu });
  const mem = h('input', { name: 'memoryMB', type: 'number', min: 64, step: 64, value: vm.memoryMB });
  const ports = h('input', { name: 'ports', value: vm.network.portForwards.map((p) => `${p.host}:${p.guest}/${p.protocol}`).join(', ') });
  const autostart = h('input', { type: 'checkbox', name: 'autostart', checked: vm.autostart });
  const save = h('button', { type: 'submit' }, 'Save');
  const stopped = vm.state === 'stopped';
  if (!stopped) { cpu.disabled = true; mem.disabled = true; }
  const form = h('form', { class: 'card form', 'aria-label': 'Settings' }, field('Name', name),
    field('vCPUs', cpu, stopped ? undefined : 'Changes when stopped'), field('Memory (MiB)', mem, stopped ? undefined : 'Changes when stopped'),
    field('Port forwards', ports, 'host:guest[/tcp|udp], comma separated'),
    h('label', { class: 'check' }, autostart, ' Start when the daemon starts (autostart)'), save);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act('Save settings', async () => {
      const portForwards = ports.value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(s);
        if (!m) throw new Error(`port forward '${s}' is not host:guest[/tcp|udp]`);
        return { host: Number(m[1]), guest: Number(m[2]), protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp' };
      });
      await api.updateVm(vm.id, {
        ...(name.value !== vm.name ? { name: name.value } : {}),
        ...(stopped && Number(cpu.value) !== vm.cpu ? { cpu: Number(cpu.value) } : {}),
        ...(stopped && Number(mem.value) !== vm.memoryMB ? { memoryMB: Number(mem.value) } : {}),
        ...(autostart.checked !== vm.autostart ? { autostart: autostart.checked } : {}),
        network: { portForwards },
      });
    }, save);
  });
  return { el: form, dispose: () => undefined };
}
