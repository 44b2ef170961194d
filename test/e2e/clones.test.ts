// Clones on the real guest: what each VM sees is checked inside the guest, on its disk (/mnt/disk, ext2 on
// the qcow2), and the layer files are checked on the host (links, backing names, read-only bases, removal).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { run } from '../../src/util/run.js';
import { readBackingName } from '../../src/storage/qcow2-header.js';
import { assertOk, assertProblem, catFile, execute, forceStop, getVm, qemuPidsOf, startReady } from '../helpers/api.js';
import { createGuestVm, killVmsOf, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { readEvents, type EventEnvelope } from '../helpers/events.js';

let d: TestDaemon;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.cleanup(); });

const clone = (vm: string, body: unknown = {}) => d.call('POST', `/vms/${vm}/clone`, body);
const pool = () => join(d.dataDir, 'disks');
const layers = () => readdirSync(pool()).filter((f) => f.endsWith('.qcow2')).sort();
/** The top layer a VM's disk link names, and the chain below it. */
async function chainOf(vmId: string): Promise<string[]> {
  const link = join(d.dataDir, 'vms', vmId, 'disk.qcow2');
  assert.ok(lstatSync(link).isSymbolicLink(), `${link} is a link into the pool`);
  assert.ok(!readlinkSync(link).startsWith('/'), 'the link is relative, so the data directory can move');
  const files = [realpathSync(link)];
  for (;;) {
    const b = await readBackingName(files.at(-1)!);
    if (b === null) return files;
    assert.ok(!b.startsWith('/'), `backing name '${b}' is relative`);
    files.push(resolve(dirname(files.at(-1)!), b));
  }
}
async function writeDisk(vm: string, text: string): Promise<void> {
  await execute(d, vm, `echo ${text} > /mnt/disk/f; sync`);
}
async function createdEvent(name: string): Promise<EventEnvelope & { data: Record<string, unknown> }> {
  const e = (await readEvents(d)).filter((x) => x.type === 'vm.created' && x.vmName === name).at(-1);
  assert.ok(e, `a vm.created event for ${name}`);
  return e as EventEnvelope & { data: Record<string, unknown> };
}

test('clone of a stopped VM: a shared read-only base under two empty layers, independent afterwards', async () => {
  const src = await createGuestVm(d, 'cl-src');
  await startReady(d, 'cl-src', { acpi: false });
  await writeDisk('cl-src', 'base');
  await forceStop(d, 'cl-src');

  const r = await clone('cl-src', { name: 'cl-a' });
  const a = assertOk(r, 201, 'clone');
  assert.equal(r.headers.get('location'), `/api/v1/vms/${a.id}`);
  assert.equal(a.state, 'stopped');
  assert.deepEqual([a.cpu, a.memoryMB, a.diskGB, a.boot.cmdline, a.network], [src.cpu, src.memoryMB, src.diskGB, src.boot.cmdline, src.network]);
  assert.ok(a.boot.kernel.startsWith(join(d.dataDir, 'vms', a.id)), 'the clone has its own boot files');

  const [srcTop, base, ...below] = await chainOf(src.id);
  const [cloneTop, cloneBase] = await chainOf(a.id);
  assert.deepEqual(below, []);
  assert.equal(cloneBase, base, 'both chains share one base');
  assert.notEqual(srcTop, cloneTop);
  assert.equal(statSync(base!).mode & 0o222, 0, 'the shared base is read-only');
  assert.ok(statSync(cloneTop!).size < 1024 * 1024, 'the clone\'s layer starts empty (O(1), nothing copied)');

  const created = await createdEvent('cl-a');
  assert.deepEqual(created.data.clonedFrom, { id: src.id, name: 'cl-src' });
  assert.equal(created.data.method, 'overlay');

  // Both boot, both see the disk as it was; what each writes afterwards stays its own.
  await startReady(d, 'cl-src', { acpi: false });
  await startReady(d, 'cl-a', { acpi: false });
  assert.equal(await catFile(d, 'cl-a', '/mnt/disk/f'), 'base\n');
  await writeDisk('cl-a', 'clone-a');
  await writeDisk('cl-src', 'source');
  await forceStop(d, 'cl-a');
  await forceStop(d, 'cl-src');
  await startReady(d, 'cl-a', { acpi: false });
  assert.equal(await catFile(d, 'cl-a', '/mnt/disk/f'), 'clone-a\n');

  // Deleting the source leaves the clone whole; its base stays because the clone needs it.
  assertOk(await d.call('DELETE', '/vms/cl-src'), 204, 'delete source');
  assert.ok(!existsSync(srcTop!), 'the source\'s own layer is removed with it');
  assert.ok(existsSync(base!), 'the base the clone still uses is kept');
  await forceStop(d, 'cl-a');
  await startReady(d, 'cl-a', { acpi: false });
  assert.equal(await catFile(d, 'cl-a', '/mnt/disk/f'), 'clone-a\n');
  assertOk(await d.call('DELETE', '/vms/cl-a?force=true'), 204, 'delete clone');
  assert.deepEqual(layers(), [], 'no VM needs any layer: all removed');
});

test('clone of a running VM: the source goes on, on a new layer; the clone boots from the disk as it was', async () => {
  const src = await createGuestVm(d, 'run-src');
  await startReady(d, 'run-src', { acpi: false });
  const [pid] = qemuPidsOf(src.id);
  await writeDisk('run-src', 'before');
  await execute(d, 'run-src', 'echo ram > /tmp/marker');

  const c = assertOk(await clone('run-src', { name: 'run-clone' }), 201, 'clone while running');
  assert.equal((await getVm(d, 'run-src')).state, 'running');
  assert.deepEqual(qemuPidsOf(src.id), [pid], 'the source kept its QEMU');
  assert.equal(await catFile(d, 'run-src', '/tmp/marker'), 'ram\n', 'the source guest did not notice');
  await writeDisk('run-src', 'after');
  const [srcTop, base] = await chainOf(src.id);
  assert.equal((await chainOf(c.id))[1], base);

  // The clone has the disk as it was at the clone (what a power cut then would have left), and no RAM.
  await startReady(d, 'run-clone', { acpi: false });
  assert.equal(await catFile(d, 'run-clone', '/mnt/disk/f'), 'before\n');
  assert.notEqual((await execute(d, 'run-clone', 'cat /tmp/marker')).exitCode, 0);

  // Everything that names the disk node follows the source onto its new layer: live snapshots, resize.
  assertOk(await d.call('POST', '/vms/run-src/snapshots', { name: 'after-clone' }), 201, 'live snapshot after the switch');
  await writeDisk('run-src', 'changed');
  assertOk(await d.call('POST', '/vms/run-src/snapshots/after-clone/restore', {}), 200, 'restore');
  assert.equal(await catFile(d, 'run-src', '/mnt/disk/f'), 'after\n');
  assert.equal(await catFile(d, 'run-src', '/tmp/marker'), 'ram\n');
  assertOk(await d.call('DELETE', '/vms/run-src/snapshots/after-clone'), 204, 'delete snapshot');
  assert.equal(assertOk(await d.call('POST', '/vms/run-src/disk/resize', { sizeGB: 2 }), 200, 'online resize').diskGB, 2);
  assert.equal(statSync(base!).mode & 0o222, 0);

  // A daemon killed between re-pointing a link and the live switch leaves the link naming another layer
  // than QEMU's: at re-adoption QEMU is the truth. Then a second live clone stacks one more layer.
  await d.stop('SIGKILL');
  const link = join(d.dataDir, 'vms', src.id, 'disk.qcow2');
  unlinkSync(link);
  symlinkSync(join('..', '..', 'disks', basename(base!)), link);
  d = await d.restart();
  assert.equal(realpathSync(link), srcTop, 'the link names the layer QEMU writes to again');
  assert.equal((await getVm(d, 'run-src')).state, 'running');
  assertOk(await clone('run-src'), 201, 'second live clone, default name');
  assert.equal((await getVm(d, 'run-src-clone')).state, 'stopped');
  const chain = await chainOf(src.id);
  assert.equal(chain.length, 3);
  assert.equal(chain[1], srcTop);

  // Suspend to disk and resume work on the new layer: RAM comes back, the disk is the one QEMU wrote.
  assertOk(await d.call('POST', '/vms/run-src/suspend'), 200, 'suspend');
  assertOk(await d.call('POST', '/vms/run-src/start', {}), 200, 'resume');
  assert.equal(await catFile(d, 'run-src', '/tmp/marker'), 'ram\n');
  assert.equal(await catFile(d, 'run-src', '/mnt/disk/f'), 'after\n');

  // Power cut and a fresh boot: the source reads what it wrote after the clone, the clone what it had.
  await forceStop(d, 'run-src');
  await startReady(d, 'run-src', { acpi: false });
  assert.equal(await catFile(d, 'run-src', '/mnt/disk/f'), 'after\n');
  assert.equal(await catFile(d, 'run-clone', '/mnt/disk/f'), 'before\n');

  // Offline work on a layered disk (qemu-img through the VM's link): disk-only snapshot, restore, resize.
  await forceStop(d, 'run-src');
  assertOk(await d.call('POST', '/vms/run-src/snapshots', { name: 'offline' }), 201, 'offline snapshot on a layer');
  await startReady(d, 'run-src', { acpi: false });
  await writeDisk('run-src', 'later');
  await forceStop(d, 'run-src');
  assertOk(await d.call('POST', '/vms/run-src/snapshots/offline/restore', {}), 200, 'offline restore on a layer');
  assertOk(await d.call('DELETE', '/vms/run-src/snapshots/offline'), 204, 'offline delete');
  assert.equal(assertOk(await d.call('POST', '/vms/run-src/disk/resize', { sizeGB: 3 }), 200, 'offline resize').diskGB, 3);
  await startReady(d, 'run-src', { acpi: false });
  assert.equal(await catFile(d, 'run-src', '/mnt/disk/f'), 'after\n');
  assert.equal(await catFile(d, 'run-clone', '/mnt/disk/f'), 'before\n');
  for (const vm of ['run-src', 'run-clone', 'run-src-clone']) assertOk(await d.call('DELETE', `/vms/${vm}?force=true`), 204, `delete ${vm}`);
  assert.deepEqual(layers(), []);
});

test('paused and suspended sources: cloned in place, and they go on exactly where they were', async () => {
  await createGuestVm(d, 'ps-src');
  await startReady(d, 'ps-src', { acpi: false });
  await writeDisk('ps-src', 'paused-disk');
  await execute(d, 'ps-src', 'echo paused-ram > /tmp/marker');
  assertOk(await d.call('POST', '/vms/ps-src/pause'), 200, 'pause');
  assertOk(await clone('ps-src', { name: 'ps-from-paused' }), 201, 'clone a paused VM');
  assert.equal((await getVm(d, 'ps-src')).state, 'paused', 'still paused');
  assertOk(await d.call('POST', '/vms/ps-src/resume'), 200, 'resume');
  assert.equal(await catFile(d, 'ps-src', '/tmp/marker'), 'paused-ram\n');

  await writeDisk('ps-src', 'suspended-disk');
  assertOk(await d.call('POST', '/vms/ps-src/suspend'), 200, 'suspend');
  assertOk(await clone('ps-src', { name: 'ps-from-suspended' }), 201, 'clone a suspended VM');
  assert.equal((await getVm(d, 'ps-src')).state, 'suspended');
  // The source resumes from its saved RAM over its new (empty) layer; the clone boots from the disk.
  assertOk(await d.call('POST', '/vms/ps-src/start', {}), 200, 'resume from disk');
  assert.equal(await catFile(d, 'ps-src', '/tmp/marker'), 'paused-ram\n');
  assert.equal(await catFile(d, 'ps-src', '/mnt/disk/f'), 'suspended-disk\n');
  await startReady(d, 'ps-from-suspended', { acpi: false });
  assert.equal(await catFile(d, 'ps-from-suspended', '/mnt/disk/f'), 'suspended-disk\n');
  await startReady(d, 'ps-from-paused', { acpi: false });
  assert.equal(await catFile(d, 'ps-from-paused', '/mnt/disk/f'), 'paused-disk\n');
  for (const vm of ['ps-src', 'ps-from-paused', 'ps-from-suspended']) assertOk(await d.call('DELETE', `/vms/${vm}?force=true`), 204, `delete ${vm}`);
});

test('a source with snapshots is copied with them; restoring or deleting on one leaves the other alone', async () => {
  await createGuestVm(d, 'snap-src');
  await startReady(d, 'snap-src', { acpi: false });
  await writeDisk('snap-src', 'v1');
  await forceStop(d, 'snap-src');
  assertOk(await d.call('POST', '/vms/snap-src/snapshots', { name: 's1' }), 201, 'disk snapshot');
  await startReady(d, 'snap-src', { acpi: false });
  await writeDisk('snap-src', 'v2');

  // Internal snapshots cannot be shared through a base, so the top layer is copied, snapshots and all.
  const c = assertOk(await clone('snap-src', { name: 'snap-clone' }), 201, 'clone');
  const created = await createdEvent('snap-clone');
  assert.ok(['copy', 'reflink'].includes(created.data.method as string));
  const list = assertOk(await d.call('GET', '/vms/snap-clone/snapshots'), 200, 'clone snapshots');
  assert.deepEqual(list.map((s: { name: string }) => s.name), ['s1']);
  assert.equal((await chainOf(c.id)).length, 1);

  // The clone is the source as it was (v2); its copy of s1 restores v1 without touching the source.
  assertOk(await d.call('POST', '/vms/snap-clone/snapshots/s1/restore', {}), 200, 'restore on the clone');
  await startReady(d, 'snap-clone', { acpi: false });
  assert.equal(await catFile(d, 'snap-clone', '/mnt/disk/f'), 'v1\n');
  assert.equal(await catFile(d, 'snap-src', '/mnt/disk/f'), 'v2\n');
  await forceStop(d, 'snap-src');
  assertOk(await d.call('DELETE', '/vms/snap-src/snapshots/s1'), 204, 'delete on the source');
  await forceStop(d, 'snap-clone');
  await startReady(d, 'snap-clone', { acpi: false });
  await writeDisk('snap-clone', 'v3');
  await forceStop(d, 'snap-clone');
  assertOk(await d.call('POST', '/vms/snap-clone/snapshots/s1/restore', {}), 200, 'the clone\'s s1 outlives the source\'s');
  await startReady(d, 'snap-clone', { acpi: false });
  assert.equal(await catFile(d, 'snap-clone', '/mnt/disk/f'), 'v1\n');
  await forceStop(d, 'snap-clone');
});

test('a clone exports as one flattened disk; a layered disk with snapshots is refused with a reason', async () => {
  await createGuestVm(d, 'exp-src');
  await startReady(d, 'exp-src', { acpi: false });
  await writeDisk('exp-src', 'exported');
  await forceStop(d, 'exp-src');
  assertOk(await clone('exp-src', { name: 'exp-clone' }), 201, 'clone');
  const out = assertOk(await d.call('POST', '/vms/exp-clone/export', { path: 'exp-clone.tar' }), 201, 'export to transfer/');
  assert.ok(out.bytes > 0);
  const imported = assertOk(await d.call('POST', '/vms/import', { path: 'exp-clone.tar', name: 'exp-imported' }), 201, 'import');
  assert.equal((await chainOf(imported.id)).length, 1, 'the imported disk stands alone');
  await startReady(d, 'exp-imported', { acpi: false });
  assert.equal(await catFile(d, 'exp-imported', '/mnt/disk/f'), 'exported\n');
  await forceStop(d, 'exp-imported');

  assertOk(await d.call('POST', '/vms/exp-clone/snapshots', { name: 'pinned' }), 201, 'snapshot on the layer');
  const refused = await d.call('POST', '/vms/exp-clone/export', { path: 'refused.tar' });
  assertProblem(refused, 409, 'CONFLICT');
  assert.match(refused.body.detail, /snapshot/);
  assert.ok(!existsSync(join(d.dataDir, 'transfer', 'refused.tar')));
  assert.deepEqual(readdirSync(join(d.dataDir, 'vms', (await getVm(d, 'exp-clone')).id)).filter((f) => f.startsWith('export-')), [], 'no flattened leftovers');
});

test('clone input is validated; names default to <source>-clone, -clone-2, …', async () => {
  await createGuestVm(d, 'val-src');
  assertProblem(await clone('val-src', { name: 'bad name!' }), 400, 'VALIDATION_FAILED');
  assertProblem(await clone('val-src', { name: 'val-src' }), 409, 'CONFLICT');
  assertProblem(await clone('val-src', { name: 'x', extra: 1 }), 400, 'VALIDATION_FAILED');
  assertProblem(await clone('no-such-vm', { name: 'val-src' }), 404, 'VM_NOT_FOUND');
  assertProblem(await clone('val-src', { network: { portForwards: [{ host: 80, guest: 22 }] } }), 400, 'VALIDATION_FAILED');
  const first = assertOk(await clone('val-src'), 201, 'default name');
  assert.equal(first.name, 'val-src-clone');
  assert.equal(assertOk(await clone('val-src'), 201, 'second default name').name, 'val-src-clone-2');
  // The source never ran: its top layer is still empty, so both clones share the base below it.
  const src = await getVm(d, 'val-src');
  assert.equal((await chainOf(src.id)).length, 2);
  assert.equal((await chainOf(first.id))[1], (await chainOf(src.id))[1]);
  assert.equal((await chainOf((await getVm(d, 'val-src-clone-2')).id)).length, 2);

  // Host port forwards are not copied (they would collide with the source's) unless a network is given.
  await createGuestVm(d, 'fwd-src', { network: { portForwards: [{ host: 40222, guest: 22 }] } });
  assert.deepEqual(assertOk(await clone('fwd-src'), 201, 'clone').network, { mode: 'user', portForwards: [] });
  const given = assertOk(await clone('fwd-src', { name: 'fwd-given', network: { portForwards: [{ host: 40223, guest: 22 }] } }), 201, 'with network');
  assert.deepEqual(given.network.portForwards, [{ host: 40223, guest: 22, protocol: 'tcp' }]);
  const long = 'l'.repeat(63);
  await createGuestVm(d, long);
  assert.equal(assertOk(await clone(long), 201, 'long name').name, `${'l'.repeat(57)}-clone`);
});

test('folders and layers left behind by an interrupted clone are removed at start-up; layers in use never are', async () => {
  const before = layers();
  // A clone that got as far as its staging folder, linked to a new layer over a base of its own.
  const base = join(pool(), `${randomUUID()}.qcow2`);
  const top = join(pool(), `${randomUUID()}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M'], 30_000);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', basename(base), '-u', top, '64M'], 30_000);
  const staging = join(d.dataDir, 'vms', `.clone-${randomUUID()}`);
  mkdirSync(staging);
  symlinkSync(join('..', '..', 'disks', basename(top)), join(staging, 'disk.qcow2'));
  const orphan = join(pool(), `${randomUUID()}.qcow2`);
  writeFileSync(orphan, 'not referenced by any VM');
  const exportLeft = join(d.dataDir, 'vms', (await getVm(d, 'val-src')).id, 'export-0123abcd.qcow2');
  writeFileSync(exportLeft, 'a flattened disk an export did not finish reading');
  d = await d.restart();
  assert.ok(!existsSync(staging), 'the staging folder is gone');
  assert.ok(!existsSync(exportLeft), 'the export leftover is gone');
  for (const f of [base, top, orphan]) assert.ok(!existsSync(f), `${basename(f)} is gone`);
  assert.deepEqual(layers(), before, 'every layer a VM uses is still there');
  await startReady(d, 'val-src-clone', { acpi: false });
  await forceStop(d, 'val-src-clone');
});

test('a data directory reached through a symlink: clones and their layers still resolve', async () => {
  const real = mkdtempSync(join(tmpdir(), 'grove-real-'));
  const link = join(mkdtempSync(join(tmpdir(), 'grove-link-')), 'data');
  symlinkSync(real, link);
  const other = await startDaemon({ dataDir: link });
  try {
    await createGuestVm(other, 'sl-src');
    await startReady(other, 'sl-src', { acpi: false });
    await execute(other, 'sl-src', 'echo linked > /mnt/disk/f; sync');
    assertOk(await other.call('POST', '/vms/sl-src/clone', { name: 'sl-clone' }), 201, 'live clone');
    await startReady(other, 'sl-clone', { acpi: false });
    assert.equal((await execute(other, 'sl-clone', 'cat /mnt/disk/f')).output, 'linked\n');
    for (const vm of ['sl-src', 'sl-clone']) assertOk(await other.call('POST', `/vms/${vm}/force-stop`), 200, 'force-stop');
    await startReady(other, 'sl-src', { acpi: false });
    assert.equal((await execute(other, 'sl-src', 'cat /mnt/disk/f')).output, 'linked\n');
  } finally {
    killVmsOf(real);
    await other.cleanup();
    rmSync(real, { recursive: true, force: true });
    rmSync(dirname(link), { recursive: true, force: true });
  }
});
