import { DomainError } from './errors.js';
import type { VmState } from './vm.js';

/**
 * What each action needs. Like Firecracker's closed action union: an action in the wrong phase gets a
 * precise error naming the current state and the states that would have allowed it.
 */
export const ACTION_STATES = {
  start: ['stopped', 'suspended', 'error'],
  stop: ['running', 'paused'],
  forceStop: ['starting', 'running', 'paused', 'stopping', 'suspending', 'suspended', 'error'],
  restart: ['running', 'paused'],
  pause: ['running'],
  resume: ['paused'],
  suspend: ['running', 'paused'],
  // A provisioning VM has no QEMU and no disk yet: it can be deleted (its download goes on) or renamed.
  delete: ['provisioning', 'stopped', 'suspended', 'error'],
  clone: ['stopped', 'running', 'paused', 'suspended', 'error'],
  snapshot: ['running', 'paused', 'stopped', 'error'],
  restore: ['running', 'paused', 'stopped', 'error'],
  resizeDisk: ['running', 'paused', 'stopped', 'error'],
  export: ['stopped', 'error'],
  updateHardware: ['provisioning', 'stopped', 'error'],
  consoleWrite: ['running', 'paused'],
  guestAgent: ['running'],
} as const satisfies Record<string, readonly VmState[]>;

export type VmAction = keyof typeof ACTION_STATES;

export function canDo(action: VmAction, state: VmState): boolean {
  return (ACTION_STATES[action] as readonly VmState[]).includes(state);
}

export function assertCan(action: VmAction, state: VmState, vmName: string): void {
  if (canDo(action, state)) return;
  const allowed = ACTION_STATES[action];
  throw new DomainError(
    'INVALID_STATE',
    `cannot ${describe(action)} VM '${vmName}' while it is ${state} (allowed when: ${allowed.join(', ')})`,
    { state, action, allowedStates: [...allowed] },
  );
}

function describe(action: VmAction): string {
  switch (action) {
    case 'forceStop': return 'force-stop';
    case 'updateHardware': return 'change cpu/memory of';
    case 'consoleWrite': return 'write to the console of';
    case 'resizeDisk': return 'resize the disk of';
    case 'guestAgent': return 'use the guest agent of';
    default: return action;
  }
}

/** States in which a QEMU process exists for the VM. */
export const LIVE_STATES: readonly VmState[] = ['starting', 'running', 'paused', 'stopping', 'suspending'];

export function isLive(state: VmState): boolean {
  return LIVE_STATES.includes(state);
}

/** Running or paused: a QEMU with a guest in it, nothing in between. */
export function isUp(state: VmState): state is 'running' | 'paused' {
  return state === 'running' || state === 'paused';
}
