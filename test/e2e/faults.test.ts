// Faults (issue #9): one QEMU frozen with SIGSTOP, the data dir's filesystem full, the daemon SIGKILLed in
// the middle of long operations (3 times here; `make soak` does 50). The QMP peer that misbehaves is a unit
// test: src/hypervisor/qemu/qmp/client-faults.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertOk, execute, getVm, pidOf, readConsoleFrom, startReady, waitForState, type Res } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/util/run.js';
import { integrityCheck, runKills } from '../soak/kill-recovery.js';
import { mountTmpfs, type SmallFs } from '../soak/small-fs.js';

describe('one QEMU frozen with SIGSTOP', () => {
  let d: TestDaemon;
  before(async () => { d = await startDaemon({ readyTimeoutMs: 60_000 }); });
  after(async () => { await d?.cleanup(); });

  test('calls on it fail with a clear timeout, the others go on, SIGCONT brings it back', async () => {
    await createGuestVm(d, 'frozen', { memoryMB: 96 });
    await createGuestVm(d, 'free', { memoryMB: 96 });
    await startReady(d, 'frozen', { acpi: false });
    await startReady(d, 'free', { acpi: false });
    const pid = await pidOf(d, 'frozen');
    process.kill(pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const r = await d.call('POST', '/vms/frozen/pause', {});
      assert.equal(r.status, 502, JSON.stringify(r.body));
      assert.equal(r.body.code, 'QEMU_FAILED');
      assert.match(r.body.detail, /^pause failed: QMP 'stop' timed out after \d+ ms$/);
      assert.ok(Date.now() - started < 120_000, 'the call ended instead of hanging');
      // The other VM and the daemon are not held up by the frozen one.
      assert.equal((await execute(d, 'free', 'echo unaffected')).output.includes('unaffected'), true);
      assertOk(await d.call('POST', '/vms/free/pause', {}), 200, 'pause free');
      assertOk(await d.call('POST', '/vms/free/resume', {}), 200, 'resume free');
      assert.equal(assertOk(await d.call('GET', '/vms'), 200, 'list').length, 2);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The `stop` that timed out was still in QEMU's socket: QEMU runs it once thawed, and the recorded state
    // follows QEMU's STOP event (a timeout says "no answer in time", not "not done").
    await waitForState(d, 'frozen', 'paused');
    assertOk(await d.call('POST', '/vms/frozen/resume', {}), 200, 'resume after SIGCONT');
    assertOk(await d.call('POST', '/vms/frozen/pause', {}), 200, 'pause after SIGCONT');
    assertOk(await d.call('POST', '/vms/frozen/resume', {}), 200, 'resume again');
    assert.equal((await execute(d, 'frozen', 'echo thawed')).output.includes('thawed'), true);
  });
});

describe('the data dir filesystem full', () => {
  let fs: SmallFs;
  let d: TestDaemon;
  before(async () => {
    fs = await mountTmpfs(320);
    d = await startDaemon({ dataDir: fs.dir, readyTimeoutMs: 60_000 });
  });
  after(async () => {
    await d?.cleanup().catch(() => undefined);
    await fs?.unmount();
  });

  test('snapshots and clone answer 507; nothing is corrupted; work resumes with space', async () => {
    await createGuestVm(d, 'full', { memoryMB: 96 });
    await createGuestVm(d, 'idle', { memoryMB: 96 });
    await startReady(d, 'full', { acpi: false });
    assertOk(await d.call('POST', '/vms/full/snapshots', { name: 'before' }), 201, 'snapshot with room');
    const taken = fs.fill();
    assert.ok(taken > 0 && fs.freeBytes() < 1024 * 1024, `filled ${taken} bytes, ${fs.freeBytes()} left`);

    const answers: Record<string, Res> = {
      liveSnapshot: await d.call('POST', '/vms/full/snapshots', { name: 'no-room' }),
      clone: await d.call('POST', '/vms/full/clone', { name: 'full-clone' }),
    };
    answers['diskSnapshot'] = await d.call('POST', '/vms/idle/snapshots', { name: 'no-room-disk' });
    const seen = Object.fromEntries(Object.entries(answers).map(([k, r]) => [k, `${r.status} ${r.body?.code} ${r.body?.detail}`]));
    assert.deepEqual(Object.fromEntries(Object.entries(answers).map(([k, r]) => [k, `${r.status} ${r.body?.code}`])), {
      liveSnapshot: '507 INSUFFICIENT_STORAGE', clone: '507 INSUFFICIENT_STORAGE', diskSnapshot: '507 INSUFFICIENT_STORAGE',
    }, JSON.stringify(seen));
    for (const r of Object.values(answers)) assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    // Nothing half-made is left: no snapshot, no clone.
    assert.deepEqual(assertOk(await d.call('GET', '/vms/full/snapshots'), 200, 'list').map((s: any) => s.name), ['before']);
    assert.deepEqual(assertOk(await d.call('GET', '/vms/idle/snapshots'), 200, 'list').map((s: any) => s.name), []);
    assert.equal((await d.call('GET', '/vms')).body.length, 2);

    fs.free();
    assert.equal(integrityCheck(join(d.dataDir, 'grove.db')), 'ok');
    assert.equal(assertOk(await d.call('POST', '/vms/full/snapshots/before/restore', {}), 200, 'restore the snapshot taken before').vm.state, 'running');
    assertOk(await d.call('POST', '/vms/full/snapshots', { name: 'after' }), 201, 'snapshot once space is back');
    // Not a clone of 'full': its failed savevm grew its qcow2 file to the whole free space (QEMU frees the
    // clusters inside the file, not on the filesystem), and without reflink a clone copies that layer.
    assertOk(await d.call('POST', '/vms/idle/clone', { name: 'idle-clone' }), 201, 'clone once space is back');
    assertOk(await d.call('POST', '/vms/idle/snapshots', { name: 'disk-after' }), 201, 'disk snapshot once space is back');
    assert.equal((await getVm(d, 'full')).state, 'running');
    const check = await run('qemu-img', ['check', realpathSync(join(d.dataDir, 'vms', (await getVm(d, 'idle')).id, 'disk.qcow2'))], 60_000);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  test('console logging goes on while the disk is full and the console works once space is back', async () => {
    const since = (await readConsoleFrom(d, 'full', 0)).nextOffset;
    fs.fill();
    assertOk(await d.call('POST', '/vms/full/console', { text: 'for i in $(seq 1 2000); do echo console-while-full-$i; done\n' }), 200, 'type into the console');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await getVm(d, 'full')).state, 'running');
    fs.free();
    await execute(d, 'full', 'echo console-after-full');
    assert.match((await readConsoleFrom(d, 'full', since)).data, /console-after-full/);
  });

  // Fails today: the export's tar stream emits an unhandled ENOSPC 'error' and the daemon process dies
  // (exports belong to the hardening of issue #9 done elsewhere; reported, not fixed here).
  test('an export on a full disk answers 507 and leaves no file; it succeeds once space is back', async () => {
    await createGuestVm(d, 'exp', { memoryMB: 96 });
    fs.fill();
    const r = await d.call('POST', '/vms/exp/export', { path: 'full.tar' });
    assert.equal(`${r.status} ${r.body?.code}`, '507 INSUFFICIENT_STORAGE', JSON.stringify(r.body));
    assert.equal(existsSync(join(d.dataDir, 'transfer', 'full.tar')), false);
    fs.free();
    assertOk(await d.call('POST', '/vms/exp/export', { path: 'full.tar' }), 201, 'export once space is back');
  });
});

test('the daemon SIGKILLed at random points of long operations: consistent after each restart', async () => {
  const r = await runKills({ kills: 3, memoryMB: 96, seed: 91 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.kills, 3);
});
