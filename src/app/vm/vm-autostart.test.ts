import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainError } from '../../domain/errors.js';
import type { Vm, VmState } from '../../domain/vm.js';
import { VmAutostart } from './vm-autostart.js';

function vm(name: string, state: VmState, autostart: boolean, order: number): Vm {
  return {
    id: `id-${name}`, name, state, cpu: 1, memoryMB: 256, diskGB: 1, distro: null, boot: {}, network: { mode: 'none', portForwards: [] },
    order, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', startedAt: null, accelerator: null, lastError: null,
    cloudInit: null, autostart,
  };
}

const quiet = { info() {}, warn() {}, error() {} };

/** An in-memory VM table; `start` follows `onStart` (default: the VM runs). */
function setup(vms: Vm[], onStart: (v: Vm, table: Map<string, Vm>) => void = (v, t) => { t.set(v.id, { ...v, state: 'running' }); }) {
  const table = new Map(vms.map((v) => [v.id, v]));
  const startCalls: string[] = [];
  const failures: { name: string; detail: string }[] = [];
  const auto = new VmAutostart({
    vms: { list: () => [...table.values()].sort((a, b) => a.order - b.order), find: (id) => table.get(id) },
    async start(id) { const v = table.get(id)!; startCalls.push(v.name); onStart(v, table); },
    fail(v, detail) { failures.push({ name: v.name, detail }); table.set(v.id, { ...v, state: 'error', lastError: detail }); },
    log: quiet,
  });
  return { auto, table, startCalls, failures };
}

test('starts the autostart VMs that are not up, in the VMs\' order, and no other', async () => {
  const s = setup([
    vm('late', 'stopped', true, 3), vm('off', 'stopped', false, 0), vm('first', 'error', true, 1),
    vm('up', 'running', true, 2), vm('saved', 'suspended', true, 4), vm('fetching', 'provisioning', true, 5),
  ]);
  await s.auto.run();
  assert.deepEqual(s.startCalls, ['first', 'late', 'saved']);
});

test('the outcome names the VMs started and those that failed', async () => {
  const s = setup([vm('a', 'stopped', true, 0), vm('b', 'stopped', true, 1)], (v, t) => {
    if (v.name === 'a') throw new DomainError('CONFLICT', `VM 'a' has no disk`);
    t.set(v.id, { ...v, state: 'running' });
  });
  assert.deepEqual(await s.auto.run(), { started: ['b'], failed: [{ name: 'a', error: `VM 'a' has no disk` }] });
});

test('a start refused before QEMU ran is recorded as the VM\'s failure', async () => {
  const s = setup([vm('a', 'stopped', true, 0)], () => { throw new DomainError('CONFLICT', 'no disk'); });
  await s.auto.run();
  assert.deepEqual(s.failures, [{ name: 'a', detail: 'autostart failed: no disk' }]);
});

test('a launch failure the start already recorded (error with that reason) is not recorded twice', async () => {
  const s = setup([vm('a', 'stopped', true, 0)], (v, t) => {
    t.set(v.id, { ...v, state: 'error', lastError: 'QEMU exited' });
    throw new DomainError('QEMU_FAILED', 'QEMU exited');
  });
  assert.deepEqual(await s.auto.run(), { started: [], failed: [{ name: 'a', error: 'QEMU exited' }] });
  assert.deepEqual(s.failures, []);
});

test('a VM in error from an earlier crash whose start is refused before QEMU ran gets the refusal recorded', async () => {
  const s = setup([{ ...vm('a', 'error', true, 0), lastError: 'QEMU was no longer running when the daemon started' }], () => {
    throw new DomainError('CONFLICT', 'no disk');
  });
  await s.auto.run();
  assert.deepEqual(s.failures, [{ name: 'a', detail: 'autostart failed: no disk' }]);
});

test('a VM started by a caller while autostart ran is not started again', async () => {
  const s = setup([vm('a', 'stopped', true, 0), vm('b', 'stopped', true, 1)], (v, t) => {
    t.set(v.id, { ...v, state: 'running' });
    // While 'a' boots, a caller starts 'b' through the API.
    const b = t.get('id-b')!;
    t.set(b.id, { ...b, state: 'running' });
  });
  await s.auto.run();
  assert.deepEqual(s.startCalls, ['a']);
});

test('a VM whose autostart was switched off before its turn is left alone', async () => {
  const s = setup([vm('a', 'stopped', true, 0), vm('b', 'stopped', true, 1)], (v, t) => {
    t.set(v.id, { ...v, state: 'running' });
    const b = t.get('id-b')!;
    t.set(b.id, { ...b, autostart: false });
  });
  await s.auto.run();
  assert.deepEqual(s.startCalls, ['a']);
});

test('close lets the VM being started finish and starts no other', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const table = new Map([vm('a', 'stopped', true, 0), vm('b', 'stopped', true, 1)].map((v) => [v.id, v]));
  const started: string[] = [];
  const auto = new VmAutostart({
    vms: { list: () => [...table.values()], find: (id) => table.get(id) },
    async start(id) { started.push(table.get(id)!.name); await gate; },
    fail() {},
    log: quiet,
  });
  const run = auto.run();
  const closed = auto.close();
  release();
  await closed;
  await run;
  assert.deepEqual(started, ['a']);
});

test('run twice: one pass', async () => {
  const s = setup([vm('a', 'stopped', true, 0)]);
  await Promise.all([s.auto.run(), s.auto.run()]);
  assert.deepEqual(s.startCalls, ['a']);
});
