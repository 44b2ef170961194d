import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { QmpClient } from './client.js';
import * as qmp from './commands.js';
import { QmpClosedError, QmpCommandError, QmpJobError, QmpTimeoutError } from './errors.js';

const QEMU = 'qemu-system-x86_64';
const haveQemu = spawnSync(QEMU, ['--version']).status === 0 && spawnSync('qemu-img', ['--version']).status === 0;
const skip = haveQemu ? false : `${QEMU} / qemu-img not installed`;

interface Vm {
  proc: ChildProcess;
  dir: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Starts a paused TCG QEMU; it and its temp dir are removed when the test ends, pass or fail. */
async function startQemu(t: TestContext, opts: { disk?: boolean } = {}): Promise<Vm & { client: QmpClient }> {
  const dir = await mkdtemp(join(tmpdir(), 'grove-qmp-'));
  const extra: string[] = [];
  if (opts.disk) {
    const img = join(dir, 'disk.qcow2');
    const r = spawnSync('qemu-img', ['create', '-f', 'qcow2', img, '64M'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    extra.push(
      '-blockdev', `driver=file,filename=${img},node-name=f0`,
      '-blockdev', 'driver=qcow2,file=f0,node-name=d0',
      '-device', 'virtio-blk-pci,drive=d0',
    );
  }
  const sock = join(dir, 'qmp.sock');
  const proc = spawn(
    QEMU,
    ['-machine', 'q35', '-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none', '-S',
      '-qmp', `unix:${sock},server=on,wait=off`, ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const vm: Vm = { proc, dir, exit, stderr: () => stderr };
  let client: QmpClient | undefined;
  t.after(async () => {
    await client?.close();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
    await exit;
    await rm(dir, { recursive: true, force: true });
  });
  client = await QmpClient.connect(sock, { connectTimeoutMs: 10_000 });
  return { ...vm, client };
}

test('real QEMU: status, run control, errors, and quit', { skip, timeout: 60_000 }, async (t) => {
  const vm = await startQemu(t);
  const c = vm.client;
  assert.equal(c.version.major >= 6, true, `QEMU ${c.version.major}.${c.version.minor}`);
  assert.deepEqual((await qmp.queryVersion(c)).qemu, { major: c.version.major, minor: c.version.minor, micro: c.version.micro });
  assert.ok(c.capabilities.includes('oob'));

  const s0 = await qmp.queryStatus(c);
  assert.equal(s0.status, 'prelaunch');
  assert.equal(s0.running, false);

  const kvm = await qmp.queryKvm(c);
  assert.equal(kvm.enabled, false, '-accel tcg');
  assert.equal(typeof kvm.present, 'boolean');

  const order: string[] = [];
  c.on('event', (e) => order.push(e.event));

  const resumed = c.waitForEvent('RESUME', { timeoutMs: 5000 });
  await qmp.cont(c);
  await resumed;
  assert.deepEqual(await qmp.queryStatus(c), { status: 'running', running: true, singlestep: false });

  // STOP is sent before the reply to `stop`, so subscribe first.
  const stopped = c.waitForEvent('STOP', { timeoutMs: 5000 });
  await qmp.stop(c);
  const stopEv = await stopped;
  assert.deepEqual(stopEv.data, {});
  assert.ok(stopEv.timestamp.seconds > 0);
  assert.equal((await qmp.queryStatus(c)).status, 'paused');

  await assert.rejects(c.execute('no-such-command'), (err: unknown) => {
    assert.ok(err instanceof QmpCommandError);
    assert.equal(err.errorClass, 'CommandNotFound');
    assert.match(err.desc, /no-such-command/);
    return true;
  });
  await assert.rejects(qmp.screendump(c, join(vm.dir, 'shot.png'), 'png'), { name: 'QmpCommandError', errorClass: 'GenericError' });

  const closeOrder: string[] = [];
  const shutdown = c.waitForEvent('SHUTDOWN', { timeoutMs: 5000 });
  shutdown.then(() => closeOrder.push('SHUTDOWN'), () => {});
  const closed = once(c, 'close').then(([err]) => {
    closeOrder.push('close');
    return err as Error | undefined;
  });
  await qmp.quit(c).then(() => closeOrder.push('quit-reply'));
  const sd = await shutdown;
  assert.deepEqual(sd.data, { guest: false, reason: 'host-qmp-quit' });
  const closeErr = await closed;
  assert.ok(closeErr instanceof QmpClosedError, 'QEMU ending the session is reported with an error');
  assert.equal(closeOrder[0], 'SHUTDOWN', `order: ${closeOrder.join(', ')}`);
  assert.equal(closeOrder.at(-1), 'close');
  assert.deepEqual(await vm.exit, { code: 0, signal: null });
  assert.deepEqual(order.slice(0, 3), ['RESUME', 'STOP', 'SHUTDOWN']);
  assert.equal(c.closed, true);
});

test('real QEMU: timeout with late reply, then SIGKILL rejects pending commands', { skip, timeout: 60_000 }, async (t) => {
  const vm = await startQemu(t);
  const c = vm.client;
  const closes: Array<Error | undefined> = [];
  c.on('close', (err) => closes.push(err));

  // A frozen QEMU keeps our command unanswered; after SIGCONT its reply arrives late.
  vm.proc.kill('SIGSTOP');
  await assert.rejects(c.execute('query-status', undefined, { timeoutMs: 100 }), QmpTimeoutError);
  vm.proc.kill('SIGCONT');
  // QEMU answers the stale query-status first; it must not satisfy this one.
  assert.deepEqual(await qmp.queryKvm(c), { enabled: false, present: true });
  assert.equal(c.closed, false);

  vm.proc.kill('SIGSTOP');
  const pending = assert.rejects(c.execute('query-status'), QmpClosedError);
  const waiter = assert.rejects(c.waitForEvent('SHUTDOWN', { timeoutMs: 10_000 }), QmpClosedError);
  await delay(50);
  vm.proc.kill('SIGKILL');
  await pending;
  await waiter;
  assert.deepEqual(await vm.exit, { code: null, signal: 'SIGKILL' });
  await delay(20);
  assert.equal(closes.length, 1);
  assert.ok(closes[0] instanceof QmpClosedError);
  await assert.rejects(qmp.queryStatus(c), QmpClosedError);
});

test('real QEMU: block queries and resize', { skip, timeout: 60_000 }, async (t) => {
  const { client: c } = await startQemu(t, { disk: true });
  const blocks = await qmp.queryBlock(c);
  const d0 = blocks.find((b) => b.inserted?.['node-name'] === 'd0');
  assert.ok(d0, JSON.stringify(blocks));
  assert.equal(d0.device, '', '-blockdev-only drives have no legacy device id');
  assert.equal(d0.inserted?.drv, 'qcow2');
  assert.equal(d0.inserted?.image['virtual-size'], 64 * 1024 * 1024);

  await qmp.blockResize(c, 'd0', 128 * 1024 * 1024);
  const after = (await qmp.queryBlock(c)).find((b) => b.inserted?.['node-name'] === 'd0');
  assert.equal(after?.inserted?.image['virtual-size'], 128 * 1024 * 1024);
  await assert.rejects(qmp.blockResize(c, 'nope', 1024), { name: 'QmpCommandError', errorClass: 'GenericError' });

  const stats = await qmp.queryBlockstats(c);
  assert.ok(stats.length >= 1);
  assert.equal(typeof stats[0]?.stats.rd_bytes, 'number');
});

test('real QEMU: snapshot-save / load / delete jobs', { skip, timeout: 120_000 }, async (t) => {
  const { client: c } = await startQemu(t, { disk: true });
  const jobs = (): Promise<string[]> => qmp.queryJobs(c).then((js) => js.map((j) => `${j.id}:${j.status}`));

  await qmp.cont(c); // snapshot a running guest: QEMU pauses it for the save and resumes it
  await qmp.snapshotSave(c, { jobId: 'save1', tag: 'snap1', vmstate: 'd0', devices: ['d0'] });
  const saved = await qmp.waitForJob(c, 'save1', 60_000);
  assert.equal(saved.type, 'snapshot-save');
  assert.deepEqual(await jobs(), [], 'waitForJob dismissed the job');
  assert.equal((await qmp.queryStatus(c)).status, 'running');
  assert.match(await qmp.humanMonitorCommand(c, 'info snapshots'), /\bsnap1\b/);

  await qmp.snapshotLoad(c, { jobId: 'load1', tag: 'snap1', vmstate: 'd0', devices: ['d0'] });
  await qmp.waitForJob(c, 'load1', 60_000);

  await qmp.snapshotLoad(c, { jobId: 'load2', tag: 'missing', vmstate: 'd0', devices: ['d0'] });
  await assert.rejects(qmp.waitForJob(c, 'load2', 60_000), (err: unknown) => {
    assert.ok(err instanceof QmpJobError);
    assert.equal(err.jobType, 'snapshot-load');
    assert.match(err.desc, /does not exist/);
    return true;
  });
  assert.deepEqual(await jobs(), [], 'failed jobs are dismissed too');

  // Without job-dismiss a concluded job lingers and keeps its id taken.
  const concluded = c.waitForEvent('JOB_STATUS_CHANGE', { timeoutMs: 10_000, predicate: (d) => d.id === 'bad' && d.status === 'concluded' });
  await qmp.snapshotSave(c, { jobId: 'bad', tag: 'x', vmstate: 'no-such-node', devices: ['d0'] });
  await concluded;
  assert.deepEqual(await jobs(), ['bad:concluded']);
  await assert.rejects(qmp.snapshotSave(c, { jobId: 'bad', tag: 'x', vmstate: 'd0', devices: ['d0'] }), /already in use/);
  await assert.rejects(qmp.waitForJob(c, 'bad', 10_000), /vmstate block device 'no-such-node' does not exist/);

  await qmp.snapshotDelete(c, { jobId: 'del1', tag: 'snap1', devices: ['d0'] });
  await qmp.waitForJob(c, 'del1', 60_000);
  assert.doesNotMatch(await qmp.humanMonitorCommand(c, 'info snapshots'), /\bsnap1\b/);

  // QEMU 7.2 quirk: deleting a tag that does not exist succeeds.
  await qmp.snapshotDelete(c, { jobId: 'del2', tag: 'never-existed', devices: ['d0'] });
  await qmp.waitForJob(c, 'del2', 60_000);
});
