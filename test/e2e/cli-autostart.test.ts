/**
 * End to end: VM autostart, set from the CLI (`create --autostart`, `update --autostart true|false`) and
 * carried out by the real daemon when it starts again on the same data dir — after a clean stop with the
 * VMs stopped, and after a crash that took QEMU down too (a host reboot) — with real QEMU (TCG) and the
 * test guest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killVmsOf, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT, READY_LINE, guestFiles } from '../helpers/guest.js';
import { assertProblem, execute, forceStop, getVm, isAlive, pidOf, startReady, waitForConsole, waitForExit, waitForState } from '../helpers/api.js';
import { readEvents } from '../helpers/events.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');

let d: TestDaemon;
let dataDir = '';
let scratch = '';

function grove(args: string[]): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(GROVE_|NEMETON_|XDG_DATA_HOME$|XDG_CONFIG_HOME$)/.test(k)) env[k] = v;
  }
  return runCommand(process.execPath, [GROVE, ...args], {
    env: { ...env, HOME: join(scratch, 'home'), XDG_CONFIG_HOME: join(scratch, 'config'), GROVE_URL: d.url, GROVE_TOKEN: d.token }, timeoutMs: 120_000,
  });
}

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** `grove create NAME` for the test guest, with these extra flags. */
async function createGuest(name: string, ...flags: string[]): Promise<{ id: string; autostart: boolean }> {
  const g = guestFiles();
  return JSON.parse(ok(await grove(['create', name, '--kernel', 'vmlinuz', '--initrd', 'initramfs.gz', '--cmdline', g.cmdline,
    '--memory', '256', '--disk', '1', '--json', ...flags]), `create ${name}`)) as { id: string; autostart: boolean };
}

async function autostartOf(name: string): Promise<boolean> {
  return (JSON.parse(ok(await grove(['show', name, '--json']), `show ${name}`)) as { autostart: boolean }).autostart;
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-autostart-'));
  mkdirSync(join(scratch, 'home'));
  d = await startDaemon();
  dataDir = d.dataDir;
});

after(async () => {
  if (process.env['GROVE_E2E_DEBUG'] && d) console.log(d.output());
  try {
    if (d) await d.cleanup();
  } finally {
    if (dataDir) killVmsOf(dataDir);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
});

test('create --autostart: the VM\'s JSON says autostart true', async () => {
  const vm = await createGuest('auto-flag', '--autostart');
  assert.equal(vm.autostart, true);
});

test('create without --autostart: autostart false', async () => {
  const vm = await createGuest('plain-flag');
  assert.equal(vm.autostart, false);
});

test('update --autostart false, then true: show follows', async () => {
  ok(await grove(['update', 'auto-flag', '--autostart', 'false']), 'update --autostart false');
  assert.equal(await autostartOf('auto-flag'), false);
  ok(await grove(['update', 'auto-flag', '--autostart', 'true']), 'update --autostart true');
  assert.equal(await autostartOf('auto-flag'), true);
});

test('update --autostart yes: usage error, exit 2', async () => {
  const r = await grove(['update', 'auto-flag', '--autostart', 'yes']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--autostart must be true or false \(got 'yes'\)/);
});

test('the API refuses autostart "yes" with 400 problem+json, on update and on create', async () => {
  assertProblem(await d.call('PATCH', '/vms/auto-flag', { autostart: 'yes' }), 400, 'VALIDATION_FAILED', 'PATCH autostart "yes"');
  assertProblem(await d.call('POST', '/vms', { name: 'bad-auto', kernel: 'vmlinuz', autostart: 'yes' }), 400, 'VALIDATION_FAILED', 'POST autostart "yes"');
});

test('ls --columns name,autostart lists the setting', async () => {
  assert.equal(ok(await grove(['ls', '--format', 'csv', '--columns', 'name,autostart']), 'ls'), 'name,autostart\r\nauto-flag,yes\r\nplain-flag,no\r\n');
});

test('daemon stopped cleanly with the VMs stopped: on its next start the autostart VMs boot in the VMs\' order, the others stay stopped', async () => {
  // auto-flag and a second autostart VM put first by reorder; plain-flag has autostart off.
  const second = await createGuest('auto-second', '--autostart');
  ok(await grove(['reorder', 'auto-second', 'auto-flag']), 'reorder');
  d = await d.restart();
  const first = await waitForState(d, 'auto-second', 'running', 60_000);
  await waitForState(d, 'auto-flag', 'running', 60_000);
  await waitForConsole(d, 'auto-flag', READY_LINE, 0, 120_000);
  assert.equal((await getVm(d, 'plain-flag')).state, 'stopped');
  const started = (await readEvents(d)).filter((e) => e.type === 'vm.started').map((e) => e.vmName);
  assert.deepEqual(started, ['auto-second', 'auto-flag']);
  assert.equal(first.id, second.id);
});

test('daemon and QEMU both killed (a host going down): the autostart VM comes back running under a new QEMU', async () => {
  for (const name of ['auto-second', 'plain-flag']) ok(await grove(['rm', name, '--force']), `rm ${name}`);
  const pid = await pidOf(d, 'auto-flag');
  await d.stop('SIGKILL');
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid);
  d = await d.restart();
  await waitForState(d, 'auto-flag', 'running', 60_000);
  const now = await pidOf(d, 'auto-flag');
  assert.ok(now !== pid && isAlive(now), `a new QEMU runs (was ${pid}, now ${now})`);
});

test('an autostart that fails is the VM\'s error (state, errors, event); the daemon answers and starts the next VM', async () => {
  await forceStop(d, 'auto-flag');
  const broken = await createGuest('auto-broken', '--autostart');
  ok(await grove(['reorder', 'auto-broken', 'auto-flag']), 'reorder');
  await d.stop();
  // Its own copy of the kernel gone: QEMU cannot boot it.
  unlinkSync(join(dataDir, 'vms', broken.id, 'kernel'));
  d = await d.restart();
  await waitForState(d, 'auto-flag', 'running', 60_000);
  const vm = await getVm(d, 'auto-broken');
  assert.equal(vm.state, 'error');
  const errors = JSON.parse(ok(await grove(['errors', 'auto-broken', '--json']), 'errors')) as { message: string }[];
  assert.ok(errors.length >= 1 && errors[0]!.message === vm.lastError, JSON.stringify(errors));
  const ev = (await readEvents(d)).filter((e) => e.type === 'vm.error' && e.vmName === 'auto-broken');
  assert.equal(ev.length, 1);
});

test('a suspended autostart VM is resumed from its saved state, its RAM as it was', async () => {
  for (const name of ['auto-flag', 'auto-broken']) ok(await grove(['rm', name, '--force']), `rm ${name}`);
  await createGuest('auto-saved', '--autostart');
  await startReady(d, 'auto-saved', { acpi: false });
  await execute(d, 'auto-saved', 'echo ram-kept-$((40+2)) > /tmp/m');
  ok(await grove(['suspend', 'auto-saved']), 'suspend');
  d = await d.restart();
  await waitForState(d, 'auto-saved', 'running', 60_000);
  assert.equal((await execute(d, 'auto-saved', 'cat /tmp/m')).output, 'ram-kept-42\n');
});
