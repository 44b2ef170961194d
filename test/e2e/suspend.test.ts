// Suspend to disk on the real guest: RAM (tmpfs marker, a running process) survives suspend → daemon
// restart → start, in the run state it had; force-stop discards a suspension.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { assertOk, assertProblem, execute, getVm, qemuPidsOf, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { readEvents } from '../helpers/events.js';

let d: TestDaemon;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.cleanup(); });

test('suspend, restart the daemon, start: the guest resumes exactly where it was', async () => {
  const vm = await createGuestVm(d, 'sleepy');
  await startReady(d, 'sleepy', { acpi: false });
  await execute(d, 'sleepy', 'echo ram-marker-1 > /tmp/m; sleep 1000 & echo $! > /tmp/pid');
  const s = assertOk(await d.call('POST', '/vms/sleepy/suspend'), 200, 'suspend');
  assert.equal(s.state, 'suspended');
  assert.deepEqual(qemuPidsOf(vm.id), [], 'QEMU exited');
  const st = assertOk(await d.call('GET', '/vms/sleepy/suspend-status'), 200, 'status');
  assert.equal(st.suspended, true);
  assert.equal(st.runState, 'running');
  assert.ok(st.stateBytes > 0 && typeof st.savedAt === 'string');
  assertProblem(await d.call('POST', '/vms/sleepy/pause'), 409, 'INVALID_STATE');
  assertProblem(await d.call('POST', '/vms/sleepy/snapshots', {}), 409, 'INVALID_STATE');

  d = await d.restart();
  assert.equal((await getVm(d, 'sleepy')).state, 'suspended');
  const r = assertOk(await d.call('POST', '/vms/sleepy/start'), 200, 'resume');
  assert.equal(r.vm.state, 'running');
  assert.equal((await execute(d, 'sleepy', 'cat /tmp/m')).output, 'ram-marker-1\n');
  assert.equal((await execute(d, 'sleepy', 'kill -0 $(cat /tmp/pid) && echo alive')).output, 'alive\n');
  assert.equal(assertOk(await d.call('GET', '/vms/sleepy/suspend-status'), 200, 'status').suspended, false);
  assert.equal(existsSync(`${d.dataDir}/vms/${vm.id}/state.bin`), false, 'the saved state is consumed');

  const events = await readEvents(d);
  assert.ok(events.some((e) => e.type === 'vm.suspended' && e.vmId === vm.id));
  assert.ok(events.some((e) => e.type === 'vm.started' && e.vmId === vm.id && e.data['resumed'] === true));
});

test('a paused VM resumes paused; force-stop discards a suspension', async () => {
  assertOk(await d.call('POST', '/vms/sleepy/pause'), 200, 'pause');
  assertOk(await d.call('POST', '/vms/sleepy/suspend'), 200, 'suspend paused');
  const r = assertOk(await d.call('POST', '/vms/sleepy/start'), 200, 'resume');
  assert.equal(r.vm.state, 'paused');
  assertOk(await d.call('POST', '/vms/sleepy/resume'), 200, 'thaw');
  assert.equal((await execute(d, 'sleepy', 'cat /tmp/m')).output, 'ram-marker-1\n');

  assertOk(await d.call('POST', '/vms/sleepy/suspend'), 200, 'suspend again');
  // The meta file carries its format version; a newer one than this Grove knows is refused, not misread.
  const metaFile = `${d.dataDir}/vms/${(await getVm(d, 'sleepy')).id}/state.json`;
  const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  assert.equal(meta.version, 1);
  writeFileSync(metaFile, JSON.stringify({ ...meta, version: 2 }));
  const refused = await d.call('POST', '/vms/sleepy/start');
  assertProblem(refused, 409, 'CONFLICT');
  assert.match(refused.body.detail, /^VM 'sleepy' was suspended by a newer Grove \(saved-state format 2; this Grove reads up to 1\)/);
  assert.equal((await getVm(d, 'sleepy')).state, 'suspended');
  const f = assertOk(await d.call('POST', '/vms/sleepy/force-stop'), 200, 'discard');
  assert.equal(f.state, 'stopped');
  assert.equal(assertOk(await d.call('GET', '/vms/sleepy/suspend-status'), 200, 'status').stateBytes, null);
  await startReady(d, 'sleepy', { acpi: false });
  assert.equal((await execute(d, 'sleepy', 'cat /tmp/m 2>/dev/null || echo fresh-boot')).output, 'fresh-boot\n');
  assert.equal((await d.call('DELETE', '/vms/sleepy?force=true')).status, 204);
});
