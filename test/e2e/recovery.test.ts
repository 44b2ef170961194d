/**
 * End to end: the daemon going away (SIGKILL, SIGTERM) and QEMU going away (killed under the daemon or
 * while it is down), with the real daemon, real QEMU (TCG) and the test guest. QEMU outlives the daemon
 * by design, so every test stops its VM itself and `after` kills whatever is left.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createGuestVm, killVmsOf, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE } from '../helpers/guest.js';
import {
  assertOk, assertProblem, execute, forceStop, getVm, isAlive, pidOf, qemuPidsOf, readConsole, readConsoleFrom, sleep, startReady,
  waitForConsole, waitForExit, waitForState,
} from '../helpers/api.js';
import { latestEventId, readEvents, waitForEvent } from '../helpers/events.js';

let d: TestDaemon;
let dataDir = '';

before(async () => {
  d = await startDaemon();
  dataDir = d.dataDir;
});

after(async () => {
  if (process.env['GROVE_E2E_DEBUG'] && d) console.log(d.output());
  try {
    if (d) await d.cleanup();
  } finally {
    if (dataDir) killVmsOf(dataDir); // `d` may be a daemon that failed to restart
  }
});

/** Kills the daemon hard (no shutdown code runs) and starts a new one on the same data dir and port. */
async function crashAndRestartDaemon(whileDown?: () => Promise<void>): Promise<void> {
  await d.stop('SIGKILL');
  if (whileDown) await whileDown();
  d = await d.restart();
}

/** The whole console as QEMU and the daemon keep it: earlier boots, then the current one. */
function consoleLogOf(id: string): string {
  return ['console.history', 'console.out']
    .map((f) => join(dataDir, 'vms', id, f))
    .map((p) => (existsSync(p) ? readFileSync(p, 'latin1') : ''))
    .join('');
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

test('daemon SIGKILLed with a running VM: QEMU keeps running, is re-adopted, no console output is lost', async () => {
  const vm = await createGuestVm(d, 'survivor');
  await startReady(d, 'survivor');
  const pid = await pidOf(d, 'survivor');
  const eventsBefore = await latestEventId(d);

  // Something the guest prints while no daemon is attached.
  await execute(d, 'survivor', '(sleep 2; echo LATE-$((40+2))) &');
  await crashAndRestartDaemon(async () => {
    assert.ok(isAlive(pid), 'QEMU outlives the daemon');
    // QEMU writes the serial log itself: the line lands in the file while the daemon is down.
    await waitFor('LATE-42 in the console files while the daemon is down', async () => consoleLogOf(vm.id).includes('LATE-42'), 20_000);
    assert.ok(isAlive(pid), 'QEMU still running');
  });

  const got = await getVm(d, 'survivor');
  assert.equal(got.state, 'running');
  assert.equal(got.lastError, null);
  assert.equal(await pidOf(d, 'survivor'), pid, 'the same QEMU was re-adopted');

  const all = await readConsoleFrom(d, 'survivor', 0);
  assert.equal(count(all.data, 'LATE-42'), 1, 'output written while the daemon was down is there exactly once');
  assert.ok(all.data.includes(READY_LINE));
  const latest = await readConsole(d, 'survivor');
  assert.ok(latest.data.includes('LATE-42'), 'a read without since sees it too');

  const r = await execute(d, 'survivor', 'echo adopted-$((6*7))');
  assert.equal(r.output, 'adopted-42\n');
  assert.equal(r.exitCode, 0);

  // Event ids keep growing across the restart (persisted log).
  const since = await latestEventId(d);
  assert.ok(since >= eventsBefore, `event ids went back: ${since} < ${eventsBefore}`);
  const stopped = assertOk(await d.call('POST', '/vms/survivor/stop', { timeoutSeconds: 60 }), 200, 'graceful stop after adoption');
  assert.equal(stopped.state, 'stopped');
  await waitForExit(pid);
  const ev = await waitForEvent(d, (e) => e.type === 'vm.stopped' && e.vmId === vm.id, { since, timeoutMs: 10_000 });
  assert.ok(ev.id > since);
  assert.equal(ev.data['reason'], 'guest-shutdown', JSON.stringify(ev.data));
});

test('daemon SIGKILLed with a paused VM: it comes back paused and stays frozen until resumed', async () => {
  await createGuestVm(d, 'frozen');
  await startReady(d, 'frozen');
  const pid = await pidOf(d, 'frozen');
  // A timer in the guest that must not fire while the vCPUs are stopped.
  await execute(d, 'frozen', '(sleep 1; echo THAWED-$((50+5))) &');
  assertOk(await d.call('POST', '/vms/frozen/pause'), 200, 'pause');
  const pausedAt = Date.now();

  await crashAndRestartDaemon();
  const vm = await getVm(d, 'frozen');
  assert.equal(vm.state, 'paused');
  const rt = assertOk(await d.call('GET', '/vms/frozen/runtime'), 200, 'runtime');
  assert.equal(rt.state, 'paused');
  assert.equal(rt.pid, pid);

  // Well past the guest's 1 s timer in wall-clock time: still nothing, the guest is frozen.
  const wait = 2500 - (Date.now() - pausedAt);
  if (wait > 0) await sleep(wait);
  assert.equal((await getVm(d, 'frozen')).state, 'paused');
  assert.ok(!(await readConsoleFrom(d, 'frozen', 0)).data.includes('THAWED-55'), 'the guest ran while paused');

  const resumed = assertOk(await d.call('POST', '/vms/frozen/resume'), 200, 'resume after adoption');
  assert.equal(resumed.state, 'running');
  await waitForConsole(d, 'frozen', 'THAWED-55', 0, 20_000);
  assert.equal((await execute(d, 'frozen', 'echo alive')).output, 'alive\n');
  await forceStop(d, 'frozen');
  await waitForExit(pid);
});

test('QEMU killed under a running daemon: error state with lastError, vm.error event, errors endpoint; start recovers', async () => {
  const vm = await createGuestVm(d, 'crashy');
  await startReady(d, 'crashy');
  const pid = await pidOf(d, 'crashy');
  await execute(d, 'crashy', 'echo BEFORE-CRASH-$((1+1))');
  const since = await latestEventId(d);

  process.kill(pid, 'SIGKILL');
  const errored = await waitForState(d, 'crashy', 'error', 20_000);
  assert.equal(typeof errored.lastError, 'string');
  assert.ok(errored.lastError.length > 0, 'lastError says what happened');
  assert.equal(errored.startedAt, null);

  const ev = await waitForEvent(d, (e) => e.type === 'vm.error' && e.vmId === vm.id, { since, timeoutMs: 10_000 });
  assert.equal(ev.vmName, 'crashy');
  assert.equal(typeof ev.data['error'], 'string');
  assert.equal(ev.data['state'], 'error');

  const errs = assertOk(await d.call('GET', '/vms/crashy/errors'), 200, 'errors');
  assert.ok(Array.isArray(errs.errors) && errs.errors.length >= 1, JSON.stringify(errs));
  const e0 = errs.errors[0];
  assert.equal(e0.source, 'qemu');
  assert.ok(e0.message.length > 0);
  assert.ok(!Number.isNaN(Date.parse(e0.at)));
  assert.ok(Number.isInteger(e0.id));
  assert.deepEqual(assertOk(await d.call('GET', '/vms/crashy/errors?limit=1'), 200, 'errors limit').errors.length, 1);

  const rt = assertOk(await d.call('GET', '/vms/crashy/runtime'), 200, 'runtime');
  assert.equal(rt.state, 'error');
  assert.equal(rt.pid, null);
  const exec = await d.call('POST', '/vms/crashy/console/execute', { command: 'true' });
  assertProblem(exec, 409, 'INVALID_STATE', 'execute in error');
  assert.equal(exec.body.state, 'error');
  // The console history from before the crash is still readable.
  assert.ok((await readConsoleFrom(d, 'crashy', 0)).data.includes('BEFORE-CRASH-2'));

  // start recovers from error; the guest boots again and lastError is cleared.
  const started = await startReady(d, 'crashy');
  assert.equal(started.vm.state, 'running');
  assert.equal(started.vm.lastError, null);
  assert.equal((await execute(d, 'crashy', 'echo reborn-$((2*21))')).output, 'reborn-42\n');
  const pid2 = await pidOf(d, 'crashy');
  assert.notEqual(pid2, pid);

  // force-stop also recovers from error.
  process.kill(pid2, 'SIGKILL');
  await waitForState(d, 'crashy', 'error', 20_000);
  const fs = assertOk(await d.call('POST', '/vms/crashy/force-stop'), 200, 'force-stop from error');
  assert.equal(fs.state, 'stopped');
  assert.equal((await getVm(d, 'crashy')).state, 'stopped');
  assert.equal(assertOk(await d.call('GET', '/vms/crashy/errors'), 200, 'errors').errors.length >= 2, true);
});

test('QEMU killed while the daemon is down: reconciled on daemon start, and startable', async () => {
  const vm = await createGuestVm(d, 'orphan');
  await startReady(d, 'orphan');
  const pid = await pidOf(d, 'orphan');
  await execute(d, 'orphan', 'echo OLD-LIFE-$((3+3))');

  await crashAndRestartDaemon(async () => {
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid);
  });

  const got = await getVm(d, 'orphan');
  assert.ok(got.state === 'error' || got.state === 'stopped', `state after reconcile: ${got.state}`);
  if (got.state === 'error') {
    assert.equal(typeof got.lastError, 'string');
    assert.ok(got.lastError.length > 0);
    const errs = assertOk(await d.call('GET', '/vms/orphan/errors'), 200, 'errors').errors;
    assert.ok(errs.length >= 1, 'the reconcile is recorded as an error');
    const events = await readEvents(d, 0);
    assert.ok(events.some((e) => e.type === 'vm.error' && e.vmId === vm.id), 'a vm.error event was published');
  }
  const rt = assertOk(await d.call('GET', '/vms/orphan/runtime'), 200, 'runtime');
  assert.equal(rt.pid, null);
  assert.ok((await readConsoleFrom(d, 'orphan', 0)).data.includes('OLD-LIFE-6'), 'history kept');

  const started = await startReady(d, 'orphan');
  assert.equal(started.vm.state, 'running');
  assert.equal((await execute(d, 'orphan', 'echo back-$((9+9))')).output, 'back-18\n');
  await forceStop(d, 'orphan');
});

test('QEMU fails to start (host port taken): error state with the reason; fixing the config and starting again works', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  try {
    const vm = await createGuestVm(d, 'busyport', { network: { mode: 'user', portForwards: [{ host: port, guest: 22, protocol: 'tcp' }] } });
    const since = await latestEventId(d);
    const r = await d.call('POST', '/vms/busyport/start', { waitFor: { console: READY_LINE, timeoutSeconds: 60 } });
    // QEMU itself refuses the forward at start-up: a failed launch, not a conflict Grove could have seen.
    assert.equal(r.status, 502, `start with a taken host port: ${JSON.stringify(r.body)}`);
    assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(r.body.code, 'QEMU_FAILED');
    assert.match(r.body.detail, new RegExp(String(port)), 'the detail names the port');

    const got = await getVm(d, 'busyport');
    assert.equal(got.state, 'error');
    assert.match(got.lastError ?? '', new RegExp(String(port)));
    assert.deepEqual(qemuPidsOf(vm.id), [], 'no QEMU left behind');
    const errs = assertOk(await d.call('GET', '/vms/busyport/errors'), 200, 'errors').errors;
    assert.ok(errs.length >= 1 && errs[0].message.includes(String(port)), JSON.stringify(errs));
    await waitForEvent(d, (e) => e.type === 'vm.error' && e.vmId === vm.id, { since, timeoutMs: 10_000 });

    // The network can be changed in the error state; then the VM starts.
    const fixed = assertOk(await d.call('PATCH', '/vms/busyport', { network: { portForwards: [] } }), 200, 'fix network');
    assert.deepEqual(fixed.network.portForwards, []);
    const started = await startReady(d, 'busyport');
    assert.equal(started.vm.state, 'running');
    assert.equal(started.vm.lastError, null);
    await forceStop(d, 'busyport');
  } finally {
    srv.close();
  }
});

test('daemon stopped with SIGTERM: running VMs keep running and are re-adopted', async () => {
  await createGuestVm(d, 'calm');
  await startReady(d, 'calm');
  const pid = await pidOf(d, 'calm');
  d = await d.restart(); // SIGTERM, then a new daemon
  assert.ok(isAlive(pid), 'a graceful daemon shutdown leaves VMs running');
  assert.equal((await getVm(d, 'calm')).state, 'running');
  assert.equal(await pidOf(d, 'calm'), pid);
  assert.equal((await execute(d, 'calm', 'echo calm-$((5*5))')).output, 'calm-25\n');
  // And the daemon may go down again with the VM stopped: it stays stopped.
  assertOk(await d.call('POST', '/vms/calm/stop', { timeoutSeconds: 60 }), 200, 'stop');
  await waitForExit(pid);
  await crashAndRestartDaemon();
  assert.equal((await getVm(d, 'calm')).state, 'stopped');
  assert.equal((await d.call('DELETE', '/vms/calm')).status, 204);
});
