/**
 * End to end: the parts of the CLI surface of issue #12 the other CLI files leave out — update's network
 * flags, the aliases people type, tables fitted to a real terminal's width, `ls --all-remotes` with a
 * remote that does not answer, and `--insecure` (flag and remote setting) letting plain HTTP through to a
 * non-loopback address — as `node bin/grove` child processes against a real daemon, real QEMU (TCG) and
 * the test guest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGuestVm, freePort, killVmsOf, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT, READY_LINE } from '../helpers/guest.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');

let d: TestDaemon;
let scratch = '';

/** The CLI's environment: none of the caller's GROVE_*, a config dir of its own, the test daemon as the local one. */
function env(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(GROVE_|NEMETON_|XDG_)/.test(k)) out[k] = v;
  return { ...out, HOME: join(scratch, 'home'), XDG_CONFIG_HOME: join(scratch, 'config'), GROVE_URL: d.url, GROVE_TOKEN: d.token };
}

function grove(args: string[], e: Record<string, string> = env()): Promise<RunResult> {
  return runCommand(process.execPath, [GROVE, ...args], { env: e, timeoutMs: 180_000 });
}

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function showJson(name: string): Promise<any> {
  return JSON.parse(ok(await grove(['show', name, '--json']), `show ${name}`));
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-clisurface-'));
  mkdirSync(join(scratch, 'home'));
  // 0.0.0.0 reaches the loopback listener on Linux while not being a loopback *name*: the --insecure case.
  d = await startDaemon({ args: ['--allowed-host', '0.0.0.0'] });
});

after(async () => {
  if (d) {
    try { await d.cleanup(); } finally { killVmsOf(d.dataDir); }
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ---- update: network ----------------------------------------------------------------------------------

test('update --port-forward replaces the forwards with the ones given', async () => {
  await createGuestVm(d, 'net-a', { network: { portForwards: [{ host: 18080, guest: 80 }] } });
  ok(await grove(['update', 'net-a', '--port-forward', '18022:22', '--port-forward', '18053:53/udp']), 'update --port-forward');
  assert.deepEqual((await showJson('net-a')).network.portForwards, [{ host: 18022, guest: 22, protocol: 'tcp' }, { host: 18053, guest: 53, protocol: 'udp' }]);
});

test('update --no-port-forwards removes them all', async () => {
  ok(await grove(['update', 'net-a', '--no-port-forwards']), 'update --no-port-forwards');
  assert.deepEqual((await showJson('net-a')).network.portForwards, []);
});

test('update --network none', async () => {
  ok(await grove(['update', 'net-a', '--network', 'none']), 'update --network none');
  assert.equal((await showJson('net-a')).network.mode, 'none');
});

test('update --port-forward with --no-port-forwards: usage error', async () => {
  const r = await grove(['update', 'net-a', '--port-forward', '18022:22', '--no-port-forwards']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /exclude each other/);
});

// ---- aliases ------------------------------------------------------------------------------------------

test('info and inspect are show', async () => {
  const names = await Promise.all(['info', 'inspect'].map(async (alias) => JSON.parse(ok(await grove([alias, 'net-a', '--json']), alias)).name));
  assert.deepEqual(names, ['net-a', 'net-a']);
});

test('remove and delete are rm', async () => {
  await createGuestVm(d, 'gone-1');
  await createGuestVm(d, 'gone-2');
  ok(await grove(['remove', 'gone-1']), 'remove');
  ok(await grove(['delete', 'gone-2']), 'delete');
  const left = (JSON.parse(ok(await grove(['ls', '--json']), 'ls')) as { name: string }[]).map((v) => v.name);
  assert.deepEqual(left.filter((n) => n.startsWith('gone-')), []);
});

test('snapshot list and webhook list are their ls', async () => {
  assert.deepEqual([
    JSON.parse(ok(await grove(['snapshot', 'list', 'net-a', '--json']), 'snapshot list')),
    JSON.parse(ok(await grove(['webhook', 'list', '--json']), 'webhook list')),
  ], [[], []]);
});

test('a running VM: reboot --hard is restart, and it keeps running', async () => {
  await createGuestVm(d, 'run-a');
  ok(await grove(['start', 'run-a', '--wait-for', READY_LINE, '--timeout', '120']), 'start');
  ok(await grove(['reboot', 'run-a', '--hard']), 'reboot --hard');
  assert.equal((await showJson('run-a')).state, 'running');
});

test('a running VM: update --cpu is refused with INVALID_STATE, exit 1', async () => {
  const r = await grove(['update', 'run-a', '--cpu', '2']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\(INVALID_STATE\)/);
});

test('force-stop is kill', async () => {
  ok(await grove(['force-stop', 'run-a']), 'force-stop');
  assert.equal((await showJson('run-a')).state, 'stopped');
});

// ---- tables on a terminal -----------------------------------------------------------------------------

test('ls on a 60-column terminal: no line is wider, cut cells end in …', async () => {
  // util-linux `script` gives the CLI a real terminal, of the width stty sets.
  const e = env();
  const cmd = `stty cols 60; '${process.execPath}' '${GROVE}' ls --columns name,state,cpu,memory,disk,ports,uuid`;
  const r = await runCommand('script', ['-qfec', cmd, '/dev/null'], { env: { ...e, SHELL: '/bin/sh' }, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.split(/\r?\n/).filter((l) => l.trim() !== '');
  const wide = lines.filter((l) => [...l].length > 60);
  assert.deepEqual({ wide, cut: lines.some((l) => l.includes('…')) }, { wide: [], cut: true }, r.stdout);
});

// ---- remotes and --insecure ---------------------------------------------------------------------------

test('ls --all-remotes with a remote that does not answer: exit 1, the remote named, the others listed', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const e = env();
  ok(await grove(['remote', 'add', 'dead', dead, '--token', 'x'.repeat(32), '--no-check'], e), 'remote add dead');
  const r = await grove(['ls', '--all-remotes', '--format', 'json'], e);
  const listed = r.stdout ? (JSON.parse(r.stdout) as { remote: string; name: string }[]) : [];
  assert.deepEqual({ code: r.code, named: /remote 'dead'/.test(r.stderr), local: listed.some((v) => v.remote === 'local' && v.name === 'net-a') },
    { code: 1, named: true, local: true }, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  ok(await grove(['remote', 'rm', 'dead'], e), 'remote rm dead');
});

test('--insecure lets plain HTTP through to a non-loopback address', async () => {
  const vms = JSON.parse(ok(await grove(['ls', '--url', `http://0.0.0.0:${d.port}`, '--insecure', '--json']), 'ls --insecure')) as { name: string }[];
  assert.ok(vms.some((v) => v.name === 'net-a'), JSON.stringify(vms));
});

test('a remote added with --insecure keeps it: plain HTTP to it works without the flag', async () => {
  const e = env();
  ok(await grove(['remote', 'add', 'near', `http://0.0.0.0:${d.port}`, '--token', d.token, '--insecure'], e), 'remote add --insecure');
  const vms = JSON.parse(ok(await grove(['ls', '--remote', 'near', '--json'], e), 'ls --remote near')) as { name: string }[];
  assert.ok(vms.some((v) => v.name === 'net-a'), JSON.stringify(vms));
});
