/**
 * QEMU's log of a VM (GET /vms/:id/qemu-log), `grove logs` (with --follow and --daemon) and `grove top`,
 * end to end: the real daemon and QEMU, a start made to fail for real (the host port it forwards is taken), twice so QEMU
 * writes its reason, and the CLI as a user runs it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertOk, assertProblem, forceStop, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');
let d: TestDaemon;
let scratch: string;

before(async () => {
  d = await startDaemon();
  scratch = mkdtempSync(join(tmpdir(), 'grove-logs-e2e-'));
  await createGuestVm(d, 'lg');
});
after(async () => {
  await d?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** The CLI with a config dir of the test's own, so no systemd unit of the host's user is seen. */
function grove(args: string[]): Promise<RunResult> {
  return runCommand(process.execPath, [GROVE, ...args], { env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token, XDG_CONFIG_HOME: scratch }, input: '' });
}

let blocker: Server;
let port: number;

/** A start QEMU refuses: the host port the VM forwards to its port 22 is taken meanwhile. */
async function failingStart(): Promise<string> {
  const r = await d.call('POST', '/vms/lg/start');
  assert.deepEqual([r.status, r.body.code], [502, 'QEMU_FAILED'], JSON.stringify(r.body));
  return r.body.detail;
}

test('a start QEMU refuses: its reason is in the QEMU log (by offset) and in Grove\'s error records; grove logs shows both', async () => {
  await startReady(d, 'lg', { acpi: false });
  await forceStop(d, 'lg');
  blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  port = (blocker.address() as AddressInfo).port;
  assertOk(await d.call('PATCH', '/vms/lg', { network: { mode: 'user', portForwards: [{ host: port, guest: 22, protocol: 'tcp' }] } }), 200, 'forward');
  const detail = await failingStart();
  const log = assertOk(await d.call('GET', '/vms/lg/qemu-log'), 200, 'qemu-log');
  const reason = `Could not set up host forwarding rule 'tcp:127.0.0.1:${port}-:22'`;
  assert.ok(log.text.endsWith(`${reason}\n`), log.text);
  assert.ok(detail.endsWith(reason), detail);
  assert.deepEqual([log.from, log.to], [0, log.size], 'a small log is read whole');
  assert.equal(Buffer.byteLength(log.text), log.size);

  const tail = assertOk(await d.call('GET', '/vms/lg/qemu-log?maxBytes=10'), 200, 'tail');
  assert.deepEqual([tail.from, tail.to, tail.text], [log.size - 10, log.size, log.text.slice(-10)]);
  const end = assertOk(await d.call('GET', `/vms/lg/qemu-log?since=${log.size + 100}`), 200, 'past the end');
  assert.deepEqual([end.from, end.to, end.text, end.size], [log.size, log.size, '', log.size]);
  assertProblem(await d.call('GET', '/vms/lg/qemu-log?maxBytes=0'), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('GET', '/vms/lg/qemu-log?lines=5'), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('GET', '/vms/none/qemu-log'), 404, 'VM_NOT_FOUND');

  const r = await grove(['logs', 'lg']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^== QEMU log \\(bytes 0–${log.size} of ${log.size}\\) ==\\n`));
  assert.ok(r.stdout.includes(log.text));
  assert.match(r.stdout, /== Grove's records of errors \(1\) ==\n\S+ {2}operation {2}QEMU failed to start \(exit 1\): /);
  const j = JSON.parse((await grove(['logs', 'lg', '--json'])).stdout);
  assert.equal(j.qemuLog.text, log.text);
  assert.equal(j.errors.length, 1);
  assert.equal(j.errors[0].source, 'operation');
});

test('grove logs --follow prints what QEMU and Grove add afterwards', async () => {
  const p = spawn(process.execPath, [GROVE, 'logs', 'lg', '--follow'], { env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token, XDG_CONFIG_HOME: scratch } });
  let out = '';
  p.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  try {
    await waitFor('the first page', async () => out.includes('== Grove\'s records of errors (1) =='));
    const before = out.length;
    // A second failed start: QEMU starts its log afresh; the reason is read from it again, not lost.
    assert.match(await failingStart(), /Could not set up host forwarding rule/);
    await waitFor('the second failure followed', async () => {
      const added = out.slice(before);
      return added.includes(`Could not set up host forwarding rule 'tcp:127.0.0.1:${port}-:22'`) && /operation  QEMU failed to start/.test(added);
    }, 30_000);
  } finally {
    p.kill('SIGTERM');
  }
});

test('grove logs --daemon without a service says where the log is; usage errors', async () => {
  const r = await grove(['logs', '--daemon']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not installed as a systemd service here .* logs to its standard output \(NOT_A_SERVICE\)/);
  assert.equal((await grove(['logs'])).code, 2);
  assert.equal((await grove(['logs', 'lg', '--daemon'])).code, 2);
  assert.equal((await grove(['logs', 'lg', '--bytes', '0'])).code, 2);
});

test('grove top --once: the host line and each VM with its state, CPU and memory; --json is the metrics document', async () => {
  blocker.close();
  await startReady(d, 'lg', { acpi: false });
  await createGuestVm(d, 'idle');
  const r = await grove(['top', '--once']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^host {2}cpu \d+\.\d% {2}memory \d+ MiB \/ \d+(\.\d)? (MiB|GiB) {2}load [\d.]+ [\d.]+ [\d.]+ {2}free disk /);
  assert.match(lines[2]!, /^NAME +STATE +CPU +MEMORY +DISK$/);
  assert.match(lines[3]!, /^lg +running +\d+\.\d% +\d+ MiB +\d+ MiB$/, 'the running VM first, with its CPU and RSS');
  assert.match(lines[4]!, /^idle +stopped +- +- +\d+ MiB$/);
  const j = JSON.parse((await grove(['top', '--once', '--json'])).stdout);
  assert.deepEqual(j.vms.map((v: any) => v.name).sort(), ['idle', 'lg']);
  assert.equal((await grove(['top', '--interval', '0.1'])).code, 2);
  await forceStop(d, 'lg');
});
