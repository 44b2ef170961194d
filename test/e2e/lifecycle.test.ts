/**
 * End to end: the real daemon (`bin/grove serve`), real QEMU (TCG) and the busybox test guest.
 * One daemon for the whole file; every test creates the VMs it needs (or re-uses one, bringing it back
 * to the state it needs first), so one failure does not cascade into the rest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE } from '../helpers/guest.js';
import {
  assertOk, assertProblem, execute, getVm, isAlive, pidOf, qemuPidsOf, readConsole, readConsoleFrom, settleConsole, sleep,
  startReady, waitAcpiReady, waitForConsole, waitForExit, waitForState,
} from '../helpers/api.js';
import { latestEventId, readEvents, waitForEvent } from '../helpers/events.js';

let d: TestDaemon;

before(async () => {
  d = await startDaemon();
});

after(async () => { await d?.cleanup(); });

/** Brings a VM to `running` with the guest shell up, whatever state an earlier (maybe failed) test left. */
async function ensureRunning(ref: string): Promise<any> {
  if ((await d.call('GET', `/vms/${ref}`)).status === 404) await createGuestVm(d, ref);
  let vm = await getVm(d, ref);
  if (vm.state === 'paused') vm = assertOk(await d.call('POST', `/vms/${ref}/resume`), 200, 'resume');
  if (vm.state === 'error') await d.call('POST', `/vms/${ref}/force-stop`);
  if (vm.state !== 'running') vm = (await startReady(d, ref)).vm;
  return vm;
}

async function ensureStopped(ref: string): Promise<void> {
  const vm = await getVm(d, ref);
  if (vm.state !== 'stopped') {
    await d.call('POST', `/vms/${ref}/force-stop`);
    await waitForState(d, ref, 'stopped');
  }
}

async function consoleEnd(ref: string): Promise<number> {
  return (await readConsole(d, ref, 'limit=1')).nextOffset;
}

// ---- the main lifecycle of one VM ------------------------------------------------------------------

test('create, then start with waitFor on the ready line', async () => {
  const vm = await createGuestVm(d, 'life');
  assert.match(vm.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(vm.name, 'life');
  assert.equal(vm.state, 'stopped');
  assert.equal(vm.memoryMB, 256);
  assert.equal(vm.startedAt, null);
  assert.equal(vm.lastError, null);

  const r = await d.call('POST', `/vms/${vm.id}/start`, { waitFor: { console: READY_LINE, timeoutSeconds: 60 } });
  const body = assertOk(r, 200, 'start');
  assert.equal(body.vm.state, 'running');
  assert.equal(body.vm.accelerator, 'tcg');
  assert.ok(body.waitFor, 'waitFor result present');
  assert.equal(body.waitFor.matched, READY_LINE);
  assert.ok(Number.isInteger(body.waitFor.offset) && body.waitFor.offset >= 0);
  assert.ok(Number.isInteger(body.waitFor.elapsedMs));

  const got = await getVm(d, 'life');
  assert.equal(got.state, 'running');
  assert.equal(got.accelerator, 'tcg');
  assert.notEqual(got.startedAt, null);

  // The ready line really is at the reported offset of the console.
  const at = await readConsole(d, 'life', `since=${body.waitFor.offset}&limit=${READY_LINE.length}`);
  assert.equal(at.data, READY_LINE);

  // Starting a running VM is a wrong-state error naming the state.
  const again = await d.call('POST', `/vms/${vm.id}/start`, {});
  assertProblem(again, 409, 'INVALID_STATE', 'start running');
  assert.equal(again.body.state, 'running');
});

test('console/execute: output, exit codes, quoting, multi-line, stderr, UTF-8', async () => {
  await ensureRunning('life');

  const uname = await execute(d, 'life', 'uname -a');
  assert.match(uname.output, /Linux/);
  assert.equal(uname.exitCode, 0);
  assert.equal(uname.timedOut, false);
  assert.ok(Number.isInteger(uname.durationMs) && uname.durationMs >= 0);

  const fail = await execute(d, 'life', 'ls /nonexistent');
  assert.equal(fail.timedOut, false);
  assert.equal(typeof fail.exitCode, 'number');
  assert.notEqual(fail.exitCode, 0);
  assert.match(fail.output, /nonexistent/);
  assert.match(fail.output, /No such file or directory/);

  assert.equal((await execute(d, 'life', '(exit 42)')).exitCode, 42);
  assert.equal((await execute(d, 'life', 'false')).exitCode, 1);

  const quoted = await execute(d, 'life', `X=5; echo "it's \\"$X\\"" '$HOME'`);
  assert.equal(quoted.output, `it's "5" $HOME\n`);
  assert.equal(quoted.exitCode, 0);

  const multi = await execute(d, 'life', 'for i in 1 2 3; do\n  echo line-$i\ndone\necho "after # not a comment"');
  assert.equal(multi.output, 'line-1\nline-2\nline-3\nafter # not a comment\n');
  assert.equal(multi.exitCode, 0);

  // A comment must not swallow the end marker; a trailing `;` or `&&` must not join it.
  assert.deepEqual(await pick(execute(d, 'life', 'echo one # two')), { output: 'one\n', exitCode: 0 });
  assert.deepEqual(await pick(execute(d, 'life', 'echo semi;')), { output: 'semi\n', exitCode: 0 });
  // Output without a final newline, stderr, and non-ASCII bytes come back as the program wrote them.
  assert.deepEqual(await pick(execute(d, 'life', 'printf abc')), { output: 'abc', exitCode: 0 });
  assert.deepEqual(await pick(execute(d, 'life', 'echo to-err >&2')), { output: 'to-err\n', exitCode: 0 });
  assert.deepEqual(await pick(execute(d, 'life', "printf '\\303\\251t\\303\\251\\n'")), { output: 'été\n', exitCode: 0 });
  // Exit code of the last command of a pipeline / list.
  assert.deepEqual(await pick(execute(d, 'life', 'echo x | grep -q y')), { output: '', exitCode: 1 });
});

test('console/execute: long commands within the documented limit run as sent', async () => {
  await ensureRunning('life');
  const lines = Array.from({ length: 40 }, (_, i) => `echo line-${String(i).padStart(3, '0')}-$((${i}*2))`);
  const script = lines.join('\n');
  const wide = `echo ${'x'.repeat(2000)} | wc -c`;
  const cases: [string, string, string][] = [
    [`a ${script.length}-byte, 40-line script`, script, lines.map((_, i) => `line-${String(i).padStart(3, '0')}-${i * 2}\n`).join('')],
    [`a ${wide.length}-char single line`, wide, '2001\n'],
  ];
  const problems: string[] = [];
  for (const [what, command, expected] of cases) {
    const r = await d.call('POST', '/vms/life/console/execute', { command, timeoutSeconds: 8 });
    if (r.status !== 200 || r.body.timedOut || r.body.exitCode !== 0 || r.body.output !== expected) {
      problems.push(`${what}: ${r.status} timedOut=${r.body?.timedOut} exitCode=${r.body?.exitCode} output=${JSON.stringify(String(r.body?.output ?? '').replace(/x{20,}/g, 'x…')).slice(0, 160)}`);
    }
    // Whatever happened, the console must be usable afterwards.
    await execute(d, 'life', 'echo ok', { timeoutSeconds: 20, allowTimeout: true });
  }
  assert.deepEqual(problems, [], 'commands the API accepts (command maxLength 16384) must run as sent');
  assert.equal((await execute(d, 'life', 'echo after-long-$((1+1))', { timeoutSeconds: 20 })).output, 'after-long-2\n');
});

test('console/execute: a timed-out command is interrupted and the console is not wedged', async () => {
  await ensureRunning('life');
  const slow = await execute(d, 'life', 'sleep 100', { timeoutSeconds: 2, allowTimeout: true });
  assert.equal(slow.timedOut, true);
  assert.equal(slow.exitCode, null);

  const next = await execute(d, 'life', 'echo still-$((1+1))', { timeoutSeconds: 20 });
  assert.equal(next.timedOut, false, `console wedged after a timeout: ${JSON.stringify(next)}`);
  assert.equal(next.output, 'still-2\n');
  assert.equal(next.exitCode, 0);

  // An unterminated quote leaves the shell waiting for more input; after the timeout the console recovers.
  const broken = await execute(d, 'life', 'echo "unbalanced', { timeoutSeconds: 3, allowTimeout: true });
  assert.equal(typeof broken.timedOut, 'boolean');
  const after = await execute(d, 'life', 'echo recovered-$((2+1))', { timeoutSeconds: 20 });
  assert.equal(after.timedOut, false, `console wedged after a syntax error: ${JSON.stringify(after)}`);
  assert.equal(after.output, 'recovered-3\n');
});

test('pause and resume', async () => {
  await ensureRunning('life');
  const since = await latestEventId(d);
  const paused = assertOk(await d.call('POST', '/vms/life/pause'), 200, 'pause');
  assert.equal(paused.state, 'paused');
  assert.equal((await getVm(d, 'life')).state, 'paused');
  const rt = assertOk(await d.call('GET', '/vms/life/runtime'), 200, 'runtime');
  assert.equal(rt.state, 'paused');
  assert.ok(rt.pid > 0 && isAlive(rt.pid), 'QEMU still exists while paused');

  const twice = await d.call('POST', '/vms/life/pause');
  assertProblem(twice, 409, 'INVALID_STATE', 'pause paused');
  assert.equal(twice.body.state, 'paused');

  const resumed = assertOk(await d.call('POST', '/vms/life/resume', {}), 200, 'resume');
  assert.equal(resumed.state, 'running');
  const again = await d.call('POST', '/vms/life/resume');
  assertProblem(again, 409, 'INVALID_STATE', 'resume running');
  assert.equal(again.body.state, 'running');

  const types = (await readEvents(d, since)).filter((e) => e.vmName === 'life').map((e) => e.type);
  assert.ok(types.includes('vm.paused'), `events: ${types.join(',')}`);
  assert.ok(types.indexOf('vm.resumed') > types.indexOf('vm.paused'), `events: ${types.join(',')}`);

  // The guest runs again.
  assert.equal((await execute(d, 'life', 'echo thawed')).output, 'thawed\n');
});

test('runtime figures of a running VM', async () => {
  await ensureRunning('life');
  const rt = assertOk(await d.call('GET', '/vms/life/runtime'), 200, 'runtime');
  assert.equal(rt.state, 'running');
  assert.ok(Number.isInteger(rt.pid) && rt.pid > 0, `pid ${rt.pid}`);
  assert.ok(isAlive(rt.pid), 'the reported pid is a live process');
  assert.equal(typeof rt.cpuPercent, 'number');
  assert.ok(rt.cpuPercent >= 0);
  assert.ok(Number.isInteger(rt.rssBytes) && rt.rssBytes > 0, `rss ${rt.rssBytes}`);
  assert.ok(Number.isInteger(rt.uptimeSeconds) && rt.uptimeSeconds >= 0);
  assert.equal(rt.accelerator, 'tcg');
  assert.ok(rt.disk && Number.isInteger(rt.disk.readBytes) && Number.isInteger(rt.disk.writeOps), `disk ${JSON.stringify(rt.disk)}`);

  const metrics = assertOk(await d.call('GET', '/metrics'), 200, 'metrics');
  const m = metrics.vms.find((v: any) => v.name === 'life');
  assert.ok(m, 'metrics list the VM');
  assert.equal(m.state, 'running');
  assert.ok(m.rssBytes > 0);
  assert.equal(typeof m.cpuPercent, 'number');
});

test('graceful stop: ACPI power-off, vm.stopped says the guest shut down', async () => {
  await ensureRunning('life');
  const pid = await pidOf(d, 'life');
  const since = await latestEventId(d);
  const stopped = assertOk(await d.call('POST', '/vms/life/stop', { timeoutSeconds: 60 }), 200, 'stop');
  assert.equal(stopped.state, 'stopped');
  const vm = await getVm(d, 'life');
  assert.equal(vm.state, 'stopped');
  assert.equal(vm.startedAt, null);
  assert.equal(vm.lastError, null);
  await waitForExit(pid);
  const rt = assertOk(await d.call('GET', '/vms/life/runtime'), 200, 'runtime');
  assert.equal(rt.pid, null);
  assert.equal(rt.state, 'stopped');

  const ev = await waitForEvent(d, (e) => e.type === 'vm.stopped' && e.vmId === vm.id, { since, timeoutMs: 10_000 });
  assert.equal(ev.vmName, 'life');
  assert.equal(ev.data['reason'], 'guest-shutdown', `vm.stopped data: ${JSON.stringify(ev.data)}`);

  const twice = await d.call('POST', '/vms/life/stop', {});
  assertProblem(twice, 409, 'INVALID_STATE', 'stop stopped');
  assert.equal(twice.body.state, 'stopped');
});

test('start again, then force-stop cuts power', async () => {
  await ensureStopped('life');
  const started = await startReady(d, 'life');
  assert.equal(started.vm.state, 'running');
  assert.equal(started.waitFor.matched, READY_LINE);
  const pid = await pidOf(d, 'life');
  const since = await latestEventId(d);
  const r = assertOk(await d.call('POST', '/vms/life/force-stop'), 200, 'force-stop');
  assert.equal(r.state, 'stopped');
  await waitForExit(pid);
  const ev = await waitForEvent(d, (e) => e.type === 'vm.stopped' && e.vmName === 'life', { since, timeoutMs: 10_000 });
  assert.equal(ev.data['reason'], 'forced');
  assertProblem(await d.call('POST', '/vms/life/force-stop'), 409, 'INVALID_STATE', 'force-stop stopped');
});

test('restart: soft (ACPI cycle) and hard (reset) both bring the guest back', async () => {
  await ensureRunning('life');

  const id = (await getVm(d, 'life')).id;

  const before1 = await consoleEnd('life');
  const ev1 = await latestEventId(d);
  const soft = assertOk(await d.call('POST', '/vms/life/restart', {}), 200, 'soft restart');
  assert.equal(soft.state, 'running');
  await waitForConsole(d, 'life', READY_LINE, before1);
  assert.equal((await getVm(d, 'life')).state, 'running');
  assert.equal((await execute(d, 'life', 'echo soft-$((1+1))')).output, 'soft-2\n');
  const softEvents = (await readEvents(d, ev1)).filter((e) => e.vmId === id && (e.type === 'vm.stopped' || e.type === 'vm.started'));
  assert.deepEqual(softEvents.map((e) => e.type), ['vm.stopped', 'vm.started']);
  assert.equal(softEvents[0]!.data['reason'], 'guest-shutdown', 'the soft restart powered off through ACPI');

  await waitAcpiReady(d, 'life');
  const before2 = await consoleEnd('life');
  const ev2 = await latestEventId(d);
  const hard = assertOk(await d.call('POST', '/vms/life/restart', { hard: true }), 200, 'hard restart');
  assert.equal(hard.state, 'running');
  await waitForConsole(d, 'life', READY_LINE, before2);
  assert.equal((await getVm(d, 'life')).state, 'running');
  assert.equal((await execute(d, 'life', 'echo hard-$((1+2))')).output, 'hard-3\n');
  const hardEvents = (await readEvents(d, ev2)).filter((e) => e.vmId === id && e.type.startsWith('vm.'));
  assert.ok(!hardEvents.some((e) => e.type === 'vm.stopped'), 'a reset does not stop QEMU');
  assert.ok(hardEvents.some((e) => e.type === 'vm.started' && e.data['hard'] === true), JSON.stringify(hardEvents));
});

test('delete: refused while running, ?force=true kills and removes it', async () => {
  await ensureRunning('life');
  const vm = await getVm(d, 'life');
  const pid = await pidOf(d, 'life');

  const refused = await d.call('DELETE', '/vms/life');
  assertProblem(refused, 409, 'INVALID_STATE', 'delete running');
  assert.equal(refused.body.state, 'running');
  assert.equal((await getVm(d, 'life')).state, 'running');
  assert.ok(isAlive(pid));

  const since = await latestEventId(d);
  const del = await d.call('DELETE', '/vms/life?force=true');
  assert.equal(del.status, 204, JSON.stringify(del.body));
  await waitForExit(pid);
  assertProblem(await d.call('GET', '/vms/life'), 404, 'VM_NOT_FOUND', 'get deleted by name');
  assertProblem(await d.call('GET', `/vms/${vm.id}`), 404, 'VM_NOT_FOUND', 'get deleted by id');
  const list = assertOk(await d.call('GET', '/vms'), 200, 'list');
  assert.ok(!list.some((v: any) => v.id === vm.id));
  assert.equal(existsSync(join(d.dataDir, 'vms', vm.id)), false, 'VM folder removed');
  await waitForEvent(d, (e) => e.type === 'vm.deleted' && e.vmId === vm.id, { since, timeoutMs: 10_000 });
});

// ---- conflicting and edge-case operations ---------------------------------------------------------

test('waitFor: a /regex/ matches; a pattern that never shows is 504 TIMEOUT and the VM keeps running', async () => {
  await createGuestVm(d, 'waiter');
  const r = assertOk(await d.call('POST', '/vms/waiter/start', { waitFor: { console: '/GROVE-GUEST-R(EA)DY/', timeoutSeconds: 60 } }), 200, 'start regex');
  assert.equal(r.waitFor.matched, READY_LINE);
  assertOk(await d.call('POST', '/vms/waiter/force-stop'), 200, 'force-stop');

  const t = await d.call('POST', '/vms/waiter/start', { waitFor: { console: 'THIS-NEVER-APPEARS', timeoutSeconds: 2 } });
  assert.equal(t.status, 504, JSON.stringify(t.body));
  assert.equal(t.body.code, 'TIMEOUT');
  assert.match(t.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.equal((await getVm(d, 'waiter')).state, 'running', 'the VM keeps running after a waitFor timeout');
  await waitForConsole(d, 'waiter', READY_LINE, 0);
  assert.equal((await d.call('DELETE', '/vms/waiter?force=true')).status, 204);
});

test('two concurrent starts: exactly one wins, the other is 409, one QEMU', async () => {
  const vm = await createGuestVm(d, 'race-start');
  const rs = await Promise.all([d.call('POST', '/vms/race-start/start'), d.call('POST', '/vms/race-start/start')]);
  const codes = rs.map((r) => r.status).sort();
  assert.deepEqual(codes, [200, 409], JSON.stringify(rs.map((r) => r.body)));
  const loser = rs.find((r) => r.status === 409)!;
  assertProblem(loser, 409, 'INVALID_STATE', 'second start');
  assert.equal((await getVm(d, vm.id)).state, 'running');
  assert.equal(qemuPidsOf(vm.id).length, 1, 'one QEMU for the VM');
  assert.equal((await d.call('DELETE', '/vms/race-start?force=true')).status, 204);
  await waitFor('QEMU gone', async () => qemuPidsOf(vm.id).length === 0, 15_000);
});

test('force-stop while a start is in flight: what it reports is what happens', async () => {
  const vm = await createGuestVm(d, 'race-kill');
  const mismatches: string[] = [];
  for (let i = 0; i < 3; i++) {
    const starting = d.call('POST', '/vms/race-kill/start');
    await sleep(10 * i);
    const [st, fs] = await Promise.all([starting, d.call('POST', '/vms/race-kill/force-stop')]);
    // Let whatever was in flight land, then compare the record with the processes.
    await waitFor('no transient state', async () => !['starting', 'stopping'].includes((await getVm(d, vm.id)).state), 30_000);
    const state = (await getVm(d, vm.id)).state;
    const pids = qemuPidsOf(vm.id);
    if (fs.status === 200 && fs.body.state === 'stopped' && (state !== 'stopped' || pids.length > 0)) {
      mismatches.push(`round ${i}: start ${st.status}, force-stop said stopped, but the VM is ${state} with QEMU ${JSON.stringify(pids)}`);
    }
    if (state === 'running' && pids.length !== 1) mismatches.push(`round ${i}: running with ${pids.length} QEMUs`);
    if (state === 'stopped' && pids.length !== 0) mismatches.push(`round ${i}: stopped with QEMU ${JSON.stringify(pids)} alive`);
    if ((await getVm(d, vm.id)).state !== 'stopped') await d.call('POST', '/vms/race-kill/force-stop');
    await waitFor('QEMU gone', async () => qemuPidsOf(vm.id).length === 0, 15_000);
  }
  assert.deepEqual(mismatches, []);
  assert.equal((await d.call('DELETE', '/vms/race-kill?force=true')).status, 204);
});

test('a guest that ignores ACPI: stop times out with 504 and keeps it running; force-stop ends a waiting stop', async () => {
  const vm = await createGuestVm(d, 'deaf');
  await startReady(d, 'deaf');
  await execute(d, 'deaf', 'killall acpid; echo deaf-$((1+1))');

  const t = await d.call('POST', '/vms/deaf/stop', { timeoutSeconds: 2 });
  assert.equal(t.status, 504, JSON.stringify(t.body));
  assert.equal(t.body.code, 'TIMEOUT');
  assert.equal(t.body.state, 'running');
  assert.equal((await getVm(d, 'deaf')).state, 'running');
  assert.equal((await execute(d, 'deaf', 'echo still-here')).output, 'still-here\n');

  // A graceful stop waiting for the guest can be cut short by force-stop.
  const waiting = d.call('POST', '/vms/deaf/stop', { timeoutSeconds: 120 });
  await waitForState(d, 'deaf', 'stopping', 10_000);
  const fs = assertOk(await d.call('POST', '/vms/deaf/force-stop'), 200, 'force-stop during stop');
  assert.equal(fs.state, 'stopped');
  const w = await waiting;
  // Force-stop is not queued behind the stop: the stop sees QEMU end and answers with the stopped VM.
  assert.equal(w.status, 200, `the waiting stop ends too: ${JSON.stringify(w.body)}`);
  assert.equal(w.body.state, 'stopped');
  assert.equal((await getVm(d, 'deaf')).state, 'stopped');
  await waitFor('QEMU gone', async () => qemuPidsOf(vm.id).length === 0, 15_000);

  // stop with force after the timeout.
  await startReady(d, 'deaf');
  await execute(d, 'deaf', 'killall acpid');
  const since = await latestEventId(d);
  const forced = assertOk(await d.call('POST', '/vms/deaf/stop', { timeoutSeconds: 1, force: true }), 200, 'stop with force');
  assert.equal(forced.state, 'stopped');
  const ev = await waitForEvent(d, (e) => e.type === 'vm.stopped' && e.vmId === vm.id, { since, timeoutMs: 10_000 });
  assert.equal(ev.data['reason'], 'forced');
  assert.equal((await d.call('DELETE', '/vms/deaf')).status, 204);
});

test('a paused VM: graceful stop thaws it and powers off; restart (soft and hard) brings it back running', async () => {
  const vm = await createGuestVm(d, 'nap');
  await startReady(d, 'nap');
  assertOk(await d.call('POST', '/vms/nap/pause'), 200, 'pause');
  const since = await latestEventId(d);
  const stopped = assertOk(await d.call('POST', '/vms/nap/stop', { timeoutSeconds: 60 }), 200, 'stop paused');
  assert.equal(stopped.state, 'stopped');
  const ev = await waitForEvent(d, (e) => e.type === 'vm.stopped' && e.vmId === vm.id, { since, timeoutMs: 10_000 });
  assert.equal(ev.data['reason'], 'guest-shutdown', 'a paused guest is thawed and shuts itself down');

  for (const body of [{}, { hard: true }]) {
    await startReady(d, 'nap');
    assertOk(await d.call('POST', '/vms/nap/pause'), 200, 'pause');
    const from = await consoleEnd('nap');
    const r = assertOk(await d.call('POST', '/vms/nap/restart', body), 200, `restart ${JSON.stringify(body)} of a paused VM`);
    assert.equal(r.state, 'running');
    await waitForConsole(d, 'nap', READY_LINE, from);
    assert.equal((await execute(d, 'nap', 'echo woke')).output, 'woke\n');
    assert.equal((await getVm(d, 'nap')).state, 'running');
    assertOk(await d.call('POST', '/vms/nap/force-stop'), 200, 'force-stop');
  }
  assert.equal((await d.call('DELETE', '/vms/nap')).status, 204);
});

// ---- definition changes ----------------------------------------------------------------------------

test('GET /vms/:id by name, by id, by upper-case id; unknown ones are 404', async () => {
  const vm = await createGuestVm(d, 'lookup');
  const byName = await getVm(d, 'lookup');
  const byId = await getVm(d, vm.id);
  const byUpper = await getVm(d, vm.id.toUpperCase());
  assert.deepEqual(byName, byId);
  assert.deepEqual(byUpper, byId);
  assert.equal(byId.name, 'lookup');
  assertProblem(await d.call('GET', '/vms/no-such-vm'), 404, 'VM_NOT_FOUND', 'unknown name');
  assertProblem(await d.call('GET', `/vms/${randomUUID()}`), 404, 'VM_NOT_FOUND', 'unknown id');
  assert.equal((await d.call('DELETE', '/vms/lookup')).status, 204);
});

test('PATCH rename: by name or id, conflicts refused, the old name is gone', async () => {
  const a = await createGuestVm(d, 'ren-a');
  await createGuestVm(d, 'ren-c');
  const since = await latestEventId(d);

  const renamed = assertOk(await d.call('PATCH', '/vms/ren-a', { name: 'ren-b' }), 200, 'rename');
  assert.equal(renamed.name, 'ren-b');
  assert.equal(renamed.id, a.id);
  assertProblem(await d.call('GET', '/vms/ren-a'), 404, 'VM_NOT_FOUND', 'old name');
  assert.equal((await getVm(d, 'ren-b')).id, a.id);
  assert.equal((await getVm(d, a.id)).name, 'ren-b');

  const ev = await waitForEvent(d, (e) => e.type === 'vm.updated' && e.vmId === a.id, { since, timeoutMs: 10_000 });
  assert.equal(ev.vmName, 'ren-b');
  assert.deepEqual(ev.data['changes'], ['name']);

  const clash = await d.call('PATCH', `/vms/${a.id}`, { name: 'ren-c' });
  assertProblem(clash, 409, 'CONFLICT', 'rename onto an existing name');
  assert.equal((await getVm(d, a.id)).name, 'ren-b');

  // Same name again: nothing to change, still 200.
  assert.equal(assertOk(await d.call('PATCH', '/vms/ren-b', { name: 'ren-b' }), 200, 'no-op rename').name, 'ren-b');

  for (const n of ['ren-b', 'ren-c']) assert.equal((await d.call('DELETE', `/vms/${n}`)).status, 204);
});

test('cpu/memory: refused while running, accepted when stopped and applied at the next boot; rename while running', async () => {
  const vm = await createGuestVm(d, 'hw');
  await startReady(d, 'hw');

  const cpu = await d.call('PATCH', '/vms/hw', { cpu: 2 });
  assertProblem(cpu, 409, 'INVALID_STATE', 'cpu while running');
  assert.equal(cpu.body.state, 'running');
  const mem = await d.call('PATCH', '/vms/hw', { memoryMB: 384 });
  assertProblem(mem, 409, 'INVALID_STATE', 'memory while running');
  const both = await d.call('PATCH', '/vms/hw', { name: 'hw-x', memoryMB: 384 });
  assertProblem(both, 409, 'INVALID_STATE', 'rename + memory while running');
  let cur = await getVm(d, vm.id);
  assert.equal(cur.name, 'hw', 'a refused PATCH changes nothing (not even the name)');
  assert.equal(cur.cpu, 1);
  assert.equal(cur.memoryMB, 256);

  // Rename is allowed at any time; the running VM keeps working under its new name.
  const since = await latestEventId(d);
  assert.equal(assertOk(await d.call('PATCH', '/vms/hw', { name: 'hw-live' }), 200, 'rename running').name, 'hw-live');
  assert.equal((await getVm(d, 'hw-live')).state, 'running');
  assert.equal((await execute(d, 'hw-live', 'echo renamed-$((3+4))')).output, 'renamed-7\n');
  // Events about the VM carry its current name.
  const out = await waitForEvent(d, (e) => e.type === 'console.output' && e.vmId === vm.id && String(e.data['data']).includes('renamed-7'), { since, timeoutMs: 10_000 });
  assert.equal(out.vmName, 'hw-live', 'console.output after a rename names the VM by its new name');

  assertOk(await d.call('POST', '/vms/hw-live/stop', { timeoutSeconds: 60, force: true }), 200, 'stop');
  const changed = assertOk(await d.call('PATCH', '/vms/hw-live', { cpu: 2, memoryMB: 384 }), 200, 'cpu+memory when stopped');
  assert.equal(changed.cpu, 2);
  assert.equal(changed.memoryMB, 384);
  cur = await getVm(d, vm.id);
  assert.equal(cur.cpu, 2);
  assert.equal(cur.memoryMB, 384);

  await startReady(d, 'hw-live');
  assert.equal((await execute(d, 'hw-live', 'nproc')).output.trim(), '2');
  const memTotal = (await execute(d, 'hw-live', "awk '/MemTotal/ {print $2}' /proc/meminfo")).output.trim();
  assert.ok(Number(memTotal) > 300 * 1024, `guest MemTotal ${memTotal} kB should reflect 384 MiB`);
  assert.equal((await d.call('DELETE', '/vms/hw-live?force=true')).status, 204);
});

test('reorder: listed VMs first in that order, the rest keep theirs', async () => {
  const o1 = await createGuestVm(d, 'ord-1');
  const o2 = await createGuestVm(d, 'ord-2');
  const o3 = await createGuestVm(d, 'ord-3');
  const mine = (list: any[]): string[] => list.filter((v) => v.name.startsWith('ord-')).map((v) => v.name);
  assert.deepEqual(mine(assertOk(await d.call('GET', '/vms'), 200, 'list')), ['ord-1', 'ord-2', 'ord-3']);

  const r = assertOk(await d.call('PUT', '/vms/order', { order: [o3.id, 'ord-1'] }), 200, 'reorder');
  assert.equal(r[0].id, o3.id);
  assert.equal(r[1].id, o1.id);
  assert.deepEqual(mine(r), ['ord-3', 'ord-1', 'ord-2']);
  const list = assertOk(await d.call('GET', '/vms'), 200, 'list');
  assert.deepEqual(list.map((v: any) => v.id), r.map((v: any) => v.id));
  for (let i = 1; i < list.length; i++) assert.ok(list[i].order > list[i - 1].order, 'order fields ascend');
  assert.equal((await getVm(d, o2.id)).order, list.findIndex((v: any) => v.id === o2.id));

  assertProblem(await d.call('PUT', '/vms/order', { order: ['ord-1', o1.id] }), 400, 'VALIDATION_FAILED', 'duplicate');
  assertProblem(await d.call('PUT', '/vms/order', { order: ['ord-1', 'no-such'] }), 404, 'VM_NOT_FOUND', 'unknown');
  assertProblem(await d.call('PUT', '/vms/order', { order: [] }), 400, 'VALIDATION_FAILED', 'empty');
  // A refused reorder changes nothing.
  assert.deepEqual(assertOk(await d.call('GET', '/vms'), 200, 'list').map((v: any) => v.id), r.map((v: any) => v.id));

  for (const n of ['ord-1', 'ord-2', 'ord-3']) assert.equal((await d.call('DELETE', `/vms/${n}`)).status, 204);
});

test('stop-all stops every running VM and leaves stopped ones alone', async () => {
  const a = await createGuestVm(d, 'sa-1');
  const b = await createGuestVm(d, 'sa-2');
  const idle = await createGuestVm(d, 'sa-idle');
  await startReady(d, 'sa-1');
  await startReady(d, 'sa-2');
  const pids = [await pidOf(d, 'sa-1'), await pidOf(d, 'sa-2')];
  const running = assertOk(await d.call('GET', '/vms'), 200, 'list').filter((v: any) => v.state === 'running' || v.state === 'paused');

  const r = assertOk(await d.call('POST', '/vms/stop-all', { timeoutSeconds: 60 }), 200, 'stop-all');
  assert.ok(Array.isArray(r.results));
  assert.deepEqual(r.results.map((x: any) => x.id).sort(), running.map((v: any) => v.id).sort());
  for (const vm of [a, b]) {
    const res = r.results.find((x: any) => x.id === vm.id);
    assert.ok(res, `stop-all result for ${vm.name}`);
    assert.equal(res.ok, true, JSON.stringify(res));
    assert.equal(res.state, 'stopped');
    assert.equal(res.name, vm.name);
  }
  assert.ok(!r.results.some((x: any) => x.id === idle.id), 'a stopped VM is not in the results');
  for (const n of ['sa-1', 'sa-2', 'sa-idle']) assert.equal((await getVm(d, n)).state, 'stopped');
  for (const p of pids) await waitForExit(p);

  // Nothing running: an empty result, not an error.
  assert.deepEqual(assertOk(await d.call('POST', '/vms/stop-all'), 200, 'stop-all idle').results, []);
  for (const n of ['sa-1', 'sa-2', 'sa-idle']) assert.equal((await d.call('DELETE', `/vms/${n}`)).status, 204);
});

// ---- the console -----------------------------------------------------------------------------------

test('console read: since/limit paging, offsets continuous, truncated flag, strip=ansi', async () => {
  await ensureRunning('con');
  await execute(d, 'con', "printf '\\033[31mRED\\033[0m-plain\\n'");
  await settleConsole(d, 'con');

  // The guest is idle now: the console holds a stable text.
  const all = await readConsole(d, 'con', 'since=0&limit=1048576');
  assert.equal(all.offset, 0);
  assert.equal(all.truncated, false);
  assert.equal(all.nextOffset, Buffer.byteLength(all.data));
  assert.ok(all.data.includes(READY_LINE));
  assert.ok(all.data.includes('\x1b[31mRED\x1b[0m-plain'), 'raw read keeps escape sequences');
  const end = all.nextOffset;

  // Without since: the latest bytes, truncated says older ones exist.
  const tail = await readConsole(d, 'con', 'limit=40');
  assert.equal(tail.nextOffset, end);
  assert.equal(tail.offset, end - 40);
  assert.equal(tail.truncated, true);
  assert.equal(tail.data, all.data.slice(-40));
  const whole = await readConsole(d, 'con');
  assert.equal(whole.offset, 0);
  assert.equal(whole.truncated, false);
  assert.equal(whole.data, all.data);

  // With since: pages chain through nextOffset and add up to the whole.
  let at = 0;
  let joined = '';
  let pages = 0;
  for (;;) {
    const p = await readConsole(d, 'con', `since=${at}&limit=97`);
    assert.equal(p.offset, at, 'each page starts where the previous one ended');
    assert.equal(p.nextOffset - p.offset, Buffer.byteLength(p.data));
    joined += p.data;
    at = p.nextOffset;
    pages++;
    if (!p.truncated) break;
    assert.equal(Buffer.byteLength(p.data), 97, 'a truncated page is full');
    assert.ok(pages < 10_000);
  }
  assert.equal(at, end);
  assert.equal(joined, all.data);
  assert.ok(pages > 1);

  // At or past the end: nothing, and nextOffset stays at the end.
  for (const since of [end, end + 1000]) {
    const r = await readConsole(d, 'con', `since=${since}`);
    assert.equal(r.data, '');
    assert.equal(r.nextOffset, end);
    assert.equal(r.truncated, false);
  }

  // strip=ansi drops escape sequences and nothing else.
  const stripped = await readConsole(d, 'con', 'since=0&limit=1048576&strip=ansi');
  assert.ok(!stripped.data.includes('\x1b'), 'no ESC left');
  assert.ok(stripped.data.includes('RED-plain'));
  assert.ok(stripped.data.includes(READY_LINE));
  assert.equal(stripped.nextOffset, end, 'offsets stay byte offsets of the raw log');

  // New output continues exactly at the old end.
  await execute(d, 'con', 'echo NEXT-$((2+3))');
  const more = await readConsole(d, 'con', `since=${end}`);
  assert.equal(more.offset, end);
  assert.ok(more.data.includes('NEXT-5'));
  assert.ok(!more.data.includes(READY_LINE));
});

test('console read: paging with since/limit never splits a UTF-8 character', async () => {
  await ensureRunning('con');
  await settleConsole(d, 'con');
  const from = await consoleEnd('con');
  await execute(d, 'con', "printf '\\303\\251%.0s' $(seq 1 20); echo");
  await settleConsole(d, 'con');
  const whole = (await readConsoleFrom(d, 'con', from)).data;
  assert.ok(whole.includes('é'.repeat(20)), 'the guest printed 20 é');
  let at = from;
  let joined = '';
  for (let i = 0; i < 10_000; i++) {
    const p = await readConsole(d, 'con', `since=${at}&limit=7`);
    assert.equal(p.offset, at);
    joined += p.data;
    if (p.nextOffset === at && p.truncated) assert.fail(`paging is stuck at ${at}`);
    at = p.nextOffset;
    if (!p.truncated) break;
  }
  assert.ok(!joined.includes('\uFFFD'), `a page boundary split a character: ${JSON.stringify(joined.slice(joined.indexOf('\uFFFD') - 10, joined.indexOf('\uFFFD') + 10))}`);
  assert.equal(joined, whole);
});

test('console send: text and keys (ctrl-c interrupts a foreground command)', async () => {
  await ensureRunning('con');
  const from = await consoleEnd('con');
  const text = 'echo SENT-$((6*7))\n';
  const r = assertOk(await d.call('POST', '/vms/con/console', { text }), 200, 'send text');
  assert.equal(r.bytes, Buffer.byteLength(text));
  await waitForConsole(d, 'con', 'SENT-42', from, 15_000);

  const from2 = await consoleEnd('con');
  // The child announces itself once it runs in the foreground process group, so ctrl-c reaches it.
  const fg = "sh -c 'echo STARTED-$((40+2)); exec sleep 1000'; echo NOT-INTERRUPTED-$((1+1))\n";
  assertOk(await d.call('POST', '/vms/con/console', { text: fg }), 200, 'send sleep');
  await waitForConsole(d, 'con', 'STARTED-42', from2, 15_000);
  const k = assertOk(await d.call('POST', '/vms/con/console', { keys: ['ctrl-c'] }), 200, 'send ctrl-c');
  assert.equal(k.bytes, 1);
  const afterCtrlC = await execute(d, 'con', 'echo back-$((1+1))', { timeoutSeconds: 20 });
  assert.equal(afterCtrlC.timedOut, false, `ctrl-c did not interrupt sleep: ${JSON.stringify(afterCtrlC)}`);
  assert.equal(afterCtrlC.output, 'back-2\n');
  const seen = (await readConsoleFrom(d, 'con', from2)).data;
  assert.ok(!seen.includes('NOT-INTERRUPTED-2'), 'the interrupted list did not go on');

  // Key names map to their terminal sequences (arrows are 3 bytes); the shell's line editor takes them.
  assert.equal(assertOk(await d.call('POST', '/vms/con/console', { keys: ['left', 'right', 'ctrl-u'] }), 200, 'keys').bytes, 3 + 3 + 1);
  const from3 = await consoleEnd('con');
  assert.equal(assertOk(await d.call('POST', '/vms/con/console', { keys: ['enter'] }), 200, 'enter').bytes, 1);
  await waitForConsole(d, 'con', 'grove# ', from3, 15_000);
  assert.equal((await execute(d, 'con', 'echo keys-ok')).output, 'keys-ok\n');
  assertProblem(await d.call('POST', '/vms/con/console', { keys: ['no-such-key'] }), 400, 'VALIDATION_FAILED', 'unknown key');
});

test('console clear: reads without since return only newer output', async () => {
  await ensureRunning('con');
  await execute(d, 'con', 'echo BEFORE-CLEAR-$((5+5))');
  const end = await settleConsole(d, 'con');
  const c = assertOk(await d.call('DELETE', '/vms/con/console'), 200, 'clear');
  assert.equal(c.offset, end);

  const empty = await readConsole(d, 'con');
  assert.equal(empty.data, '');
  assert.equal(empty.offset, end);
  assert.equal(empty.truncated, false);

  await execute(d, 'con', 'echo AFTER-CLEAR-$((3*3))');
  const r = await readConsole(d, 'con');
  assert.equal(r.offset, end);
  assert.equal(r.truncated, false);
  assert.ok(r.data.includes('AFTER-CLEAR-9'));
  assert.ok(!r.data.includes('BEFORE-CLEAR-10'));
  assert.ok(!r.data.includes(READY_LINE));
});

test('two concurrent console/execute calls on one VM each get their own output', async () => {
  await ensureRunning('con');
  const [a, b, c] = await Promise.all([
    execute(d, 'con', 'echo AAA-$((1+1)); sleep 1; echo AAA-end'),
    execute(d, 'con', 'echo BBB-$((2+2))'),
    execute(d, 'con', 'echo CCC-$((3+3)); (exit 7)'),
  ]);
  assert.deepEqual({ output: a.output, exitCode: a.exitCode }, { output: 'AAA-2\nAAA-end\n', exitCode: 0 });
  assert.deepEqual({ output: b.output, exitCode: b.exitCode }, { output: 'BBB-4\n', exitCode: 0 });
  assert.deepEqual({ output: c.output, exitCode: c.exitCode }, { output: 'CCC-6\n', exitCode: 7 });
});

test('console/execute: a large output comes back byte-exact', async () => {
  await ensureRunning('con');
  const n = 3000;
  const r = await execute(d, 'con', `seq 1 ${n}`, { timeoutSeconds: 120 });
  assert.equal(r.exitCode, 0);
  const expected = Array.from({ length: n }, (_, i) => String(i + 1)).join('\n') + '\n';
  if (r.output !== expected) {
    const lines = r.output.split('\n');
    const bad = lines.map((l, i) => [i, l] as const).filter(([i, l]) => l !== String(i + 1) && i < n).slice(0, 5);
    assert.fail(`output differs from seq 1 ${n} (${r.output.length} vs ${expected.length} chars); first bad lines: ${JSON.stringify(bad)}`);
  }
});

test('console history survives a stop; the console refuses input while stopped', async () => {
  await ensureRunning('con');
  await execute(d, 'con', 'echo HIST-$((100+23))');
  assertOk(await d.call('POST', '/vms/con/stop', { timeoutSeconds: 60, force: true }), 200, 'stop');
  assert.equal((await getVm(d, 'con')).state, 'stopped');

  const latest = await readConsole(d, 'con', 'limit=1048576');
  assert.ok(latest.data.includes('HIST-123'), 'read without since after stop');
  const full = await readConsoleFrom(d, 'con', 0);
  assert.ok(full.data.includes('HIST-123'), 'read from 0 after stop');

  const send = await d.call('POST', '/vms/con/console', { text: 'x' });
  assertProblem(send, 409, 'INVALID_STATE', 'send while stopped');
  assert.equal(send.body.state, 'stopped');
  const exec = await d.call('POST', '/vms/con/console/execute', { command: 'true' });
  assertProblem(exec, 409, 'INVALID_STATE', 'execute while stopped');
  assert.equal(exec.body.state, 'stopped');

  // After the next boot the old history is still there, followed by the new boot.
  const end = full.nextOffset;
  await startReady(d, 'con');
  const again = await readConsoleFrom(d, 'con', 0);
  assert.ok(again.data.includes('HIST-123'));
  assert.ok((await readConsoleFrom(d, 'con', end)).data.includes(READY_LINE), 'the new boot follows the old history');
  assert.equal((await d.call('DELETE', '/vms/con?force=true')).status, 204);
});

async function pick(p: Promise<{ output: string; exitCode: number | null }>): Promise<{ output: string; exitCode: number | null }> {
  const r = await p;
  return { output: r.output, exitCode: r.exitCode };
}
