// Snapshots on the real guest: what a restore brings back is checked inside the guest, in RAM (tmpfs) for
// live snapshots and on the VM's disk (/mnt/disk, ext2 on the qcow2) for disk-only ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/util/run.js';
import { assertOk, assertProblem, catFile, execute, getVm, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { readEvents } from '../helpers/events.js';

let d: TestDaemon;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.cleanup(); });

const snap = (vm: string, body: unknown) => d.call('POST', `/vms/${vm}/snapshots`, body);
const restore = (vm: string, sid: string, body: unknown = {}) => d.call('POST', `/vms/${vm}/snapshots/${sid}/restore`, body);

test('live snapshot: RAM, processes and run state come back exactly', async () => {
  await createGuestVm(d, 'snap-live');
  await startReady(d, 'snap-live', { acpi: false });
  await execute(d, 'snap-live', 'echo one > /tmp/marker; sleep 1000 & echo $! > /tmp/sleeper');
  const s = assertOk(await snap('snap-live', { name: 'first', description: 'marker one' }), 201, 'snapshot');
  assert.equal(s.kind, 'live');
  assert.equal(s.vmState, 'running');
  await execute(d, 'snap-live', 'echo two > /tmp/marker; kill $(cat /tmp/sleeper)');
  assert.equal(await catFile(d, 'snap-live', '/tmp/marker'), 'two\n');

  const r = assertOk(await restore('snap-live', 'first'), 200, 'restore');
  assert.equal(r.vm.state, 'running');
  assert.equal(await catFile(d, 'snap-live', '/tmp/marker'), 'one\n');
  // The process killed after the snapshot is alive again.
  assert.equal((await execute(d, 'snap-live', 'kill -0 $(cat /tmp/sleeper) && echo alive')).output, 'alive\n');

  // By id as well as by name; names are unique per VM.
  assertOk(await restore('snap-live', s.id), 200, 'restore by id');
  assertProblem(await snap('snap-live', { name: 'first' }), 409, 'CONFLICT');
});

test('a snapshot of a paused VM restores to paused', async () => {
  assertOk(await d.call('POST', '/vms/snap-live/pause'), 200, 'pause');
  const s = assertOk(await snap('snap-live', { name: 'frozen' }), 201, 'snapshot paused');
  assert.equal(s.vmState, 'paused');
  assert.equal((await getVm(d, 'snap-live')).state, 'paused');
  assertOk(await d.call('POST', '/vms/snap-live/resume'), 200, 'resume');
  const r = assertOk(await restore('snap-live', 'frozen'), 200, 'restore');
  assert.equal(r.vm.state, 'paused');
  // Restoring onto a paused VM: a paused snapshot keeps it paused, a running one brings it back running.
  assert.equal(assertOk(await restore('snap-live', 'frozen'), 200, 'paused onto paused').vm.state, 'paused');
  assert.equal((await getVm(d, 'snap-live')).state, 'paused');
  assert.equal(assertOk(await restore('snap-live', 'first'), 200, 'running onto paused').vm.state, 'running');
  assert.equal(await catFile(d, 'snap-live', '/tmp/marker'), 'one\n');
});

test('a live snapshot restored on a stopped VM starts it from there', async () => {
  assertOk(await d.call('POST', '/vms/snap-live/force-stop'), 200, 'force-stop');
  const r = assertOk(await restore('snap-live', 'first'), 200, 'restore while stopped');
  assert.equal(r.vm.state, 'running');
  assert.equal(await catFile(d, 'snap-live', '/tmp/marker'), 'one\n');
});

test('disk-only snapshot of a stopped VM: the file on disk comes back; running restore needs force', async () => {
  await execute(d, 'snap-live', 'echo diskA > /mnt/disk/f; sync');
  assertOk(await d.call('POST', '/vms/snap-live/force-stop'), 200, 'force-stop');
  assertProblem(await snap('snap-live', { name: 'ram', memory: true }), 409, 'INVALID_STATE');
  const s = assertOk(await snap('snap-live', { name: 'disk-a' }), 201, 'disk snapshot');
  assert.equal(s.kind, 'disk');
  assert.equal(s.vmState, 'stopped');

  await startReady(d, 'snap-live', { acpi: false });
  await execute(d, 'snap-live', 'echo diskB > /mnt/disk/f; sync');
  const refused = await restore('snap-live', 'disk-a');
  assertProblem(refused, 409, 'INVALID_STATE');
  assert.equal(refused.body.state, 'running');
  assert.equal(await catFile(d, 'snap-live', '/mnt/disk/f'), 'diskB\n');

  const r = assertOk(await restore('snap-live', 'disk-a', { force: true }), 200, 'forced restore');
  assert.equal(r.vm.state, 'stopped');
  await startReady(d, 'snap-live', { acpi: false });
  assert.equal(await catFile(d, 'snap-live', '/mnt/disk/f'), 'diskA\n');
});

test('list, delete, events; unknown snapshots are 404', async () => {
  const names = assertOk(await d.call('GET', '/vms/snap-live/snapshots'), 200, 'list').map((s: any) => s.name);
  assert.deepEqual(names, ['first', 'frozen', 'disk-a']);
  assert.equal((await d.call('DELETE', '/vms/snap-live/snapshots/frozen')).status, 204);
  assertProblem(await d.call('DELETE', '/vms/snap-live/snapshots/frozen'), 404, 'NOT_FOUND');
  assertProblem(await restore('snap-live', 'nope'), 404, 'NOT_FOUND');
  assertProblem(await d.call('GET', '/vms/nope/snapshots'), 404, 'VM_NOT_FOUND');
  const types = (await readEvents(d)).filter((e) => e.type.startsWith('snapshot.')).map((e) => e.type);
  assert.ok(types.includes('snapshot.created') && types.includes('snapshot.restored') && types.includes('snapshot.deleted'), types.join());
});

test('metadata follows the disk: a snapshot removed behind the daemon is dropped at start-up', async () => {
  assertOk(await d.call('POST', '/vms/snap-live/force-stop'), 200, 'force-stop');
  const vm = await getVm(d, 'snap-live');
  const gone = assertOk(await d.call('GET', '/vms/snap-live/snapshots'), 200, 'list').find((s: any) => s.name === 'disk-a');
  const disk = `${d.dataDir}/vms/${vm.id}/disk.qcow2`;
  const r = await run('qemu-img', ['snapshot', '-d', gone.tag, disk], 30_000);
  assert.equal(r.code, 0, r.stderr);
  d = await d.restart();
  const names = assertOk(await d.call('GET', '/vms/snap-live/snapshots'), 200, 'list').map((s: any) => s.name);
  assert.deepEqual(names, ['first']);
  assert.equal((await d.call('DELETE', '/vms/snap-live?force=true')).status, 204);
});
