import type { Vm } from '../../client/types.js';
import { act, api } from '../api.js';
import { h } from '../dom.js';

interface Action { label: string; when: Vm['state'][]; run: (vm: Vm) => Promise<unknown>; confirm?: string }

/** Each lifecycle action offered only in the states the API accepts it in (SPEC §4). */
export const ACTIONS: Action[] = [
  { label: 'Start', when: ['stopped', 'suspended', 'error'], run: (vm) => api.startVm(vm.id) },
  { label: 'Stop', when: ['running', 'paused'], run: (vm) => api.stopVm(vm.id, { timeoutSeconds: 60, force: true }) },
  { label: 'Force stop', when: ['running', 'paused', 'starting', 'stopping', 'suspending', 'error'], run: (vm) => api.forceStopVm(vm.id), confirm: 'Cut the power of {name}? Unsaved guest data is lost.' },
  { label: 'Pause', when: ['running'], run: (vm) => api.pauseVm(vm.id) },
  { label: 'Resume', when: ['paused'], run: (vm) => api.resumeVm(vm.id) },
  { label: 'Restart', when: ['running'], run: (vm) => api.restartVm(vm.id) },
  { label: 'Delete', when: ['stopped', 'error', 'suspended'], run: (vm) => api.deleteVm(vm.id), confirm: 'Delete {name} and its disks?' },
];

export function actionButtons(vm: Vm, only?: string[]): HTMLElement {
  const box = h('div', { class: 'actions', role: 'group', 'aria-label': `Actions for ${vm.name}` });
  for (const a of ACTIONS) {
    if (only && !only.includes(a.label)) continue;
    if (!a.when.includes(vm.state)) continue;
    const b = h('button', { type: 'button', class: a.label === 'Delete' || a.label === 'Force stop' ? 'danger' : '', 'data-action': a.label, 'aria-label': `${a.label} ${vm.name}` }, a.label);
    b.addEventListener('click', () => {
      if (a.confirm && !confirm(a.confirm.replace('{name}', vm.name))) return;
      act(`${a.label} ${vm.name}`, () => a.run(vm), b);
    });
    box.append(b);
  }
  return box;
}
