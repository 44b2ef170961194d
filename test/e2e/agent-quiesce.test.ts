/**
 * End to end: what the rest of Grove does with the guest agent — filesystems frozen around disk-only
 * snapshots and clones of a running VM (so they hold what the guest had written, not a power-cut image),
 * and guest-shutdown when a graceful stop's ACPI button press goes unheard. Real daemon, QEMU (TCG), the
 * test guest with Debian's qemu-ga; ext2 on the VM's disk at /mnt/disk.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, execute, forceStop, getVm, startReady } from '../helpers/api.js';
import { latestEventId, waitForEvent } from '../helpers/events.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
  await createGuestVm(d, 'q');
});
after(async () => { await d?.cleanup(); });

async function run(vm: string, command: string): Promise<any> {
  const r = assertOk(await d.call('POST', `/vms/${vm}/exec`, { command, timeoutSeconds: 30 }), 200, `exec ${command} on ${vm}`);
  assert.equal(r.timedOut, false, `${command}: a frozen filesystem would block it`);
  return r;
}

async function startWithAgent(vm: string): Promise<void> {
  await startReady(d, vm, { acpi: false });
  await waitFor(`the agent of ${vm}`, async () => (await getVm(d, vm)).agent?.connected === true, 60_000);
}

test('a disk snapshot of a running VM: filesystems frozen while it is taken, thawed after; it holds unsynced writes', async () => {
  await startWithAgent('q');
  // Only in the guest's page cache: without a freeze (which syncs) the disk would not have it for seconds.
  await run('q', 'echo before > /mnt/disk/f');
  const since = await latestEventId(d);
  const snap = assertOk(await d.call('POST', '/vms/q/snapshots', { name: 'cold', memory: false }), 201, 'disk snapshot');
  assert.equal(snap.kind, 'disk');
  const ev = await waitForEvent(d, (e) => e.type === 'snapshot.created' && e.vmName === 'q', { since });
  assert.equal(ev.data.quiesced, true);
  // Thawed: writing works at once.
  await run('q', 'echo after > /mnt/disk/g');

  await forceStop(d, 'q');
  assertOk(await d.call('POST', '/vms/q/snapshots/cold/restore'), 200, 'restore');
  await startWithAgent('q');
  assert.equal((await run('q', 'cat /mnt/disk/f; ls /mnt/disk')).stdout, 'before\nf\nlost+found\n');
});

test('a clone of a running VM: frozen while its disk is split off; the clone has the unsynced writes', async () => {
  await run('q', 'echo clone-me > /mnt/disk/c');
  const since = await latestEventId(d);
  const clone = assertOk(await d.call('POST', '/vms/q/clone', { name: 'q2' }), 201, 'clone');
  const ev = await waitForEvent(d, (e) => e.type === 'vm.created' && e.vmId === clone.id, { since });
  assert.equal(ev.data.quiesced, true);
  assert.equal(ev.data.sourceState, 'running');
  await run('q', 'echo still-writable > /mnt/disk/h');
  await startWithAgent('q2');
  assert.equal((await run('q2', 'cat /mnt/disk/c')).stdout, 'clone-me\n');
  await forceStop(d, 'q2');
});

test('without an answering agent the copy goes ahead unfrozen, and says so', async () => {
  let since = await latestEventId(d);
  await execute(d, 'q', 'kill $(cat /run/qemu-ga.pid)');
  await waitForEvent(d, (e) => e.type === 'agent.disconnected' && e.vmName === 'q', { since, timeoutMs: 60_000 });
  since = await latestEventId(d);
  assertOk(await d.call('POST', '/vms/q/snapshots', { name: 'warm', memory: false }), 201, 'disk snapshot');
  const ev = await waitForEvent(d, (e) => e.type === 'snapshot.created' && e.vmName === 'q', { since });
  assert.equal(ev.data.quiesced, false);
  since = await latestEventId(d);
  await execute(d, 'q', 'start-qemu-ga');
  await waitForEvent(d, (e) => e.type === 'agent.connected' && e.vmName === 'q', { since, timeoutMs: 60_000 });
});

test('a guest that does not hear the ACPI button is powered off through its agent (guest-shutdown)', async () => {
  await execute(d, 'q', 'killall acpid');
  const since = await latestEventId(d);
  const stopped = assertOk(await d.call('POST', '/vms/q/stop', { timeoutSeconds: 90 }), 200, 'graceful stop');
  assert.equal(stopped.state, 'stopped');
  const ev = await waitForEvent(d, (e) => e.type === 'vm.stopped' && e.vmName === 'q', { since });
  assert.equal(ev.data.reason, 'guest-shutdown', 'the guest powered itself off (not a forced stop)');
});
