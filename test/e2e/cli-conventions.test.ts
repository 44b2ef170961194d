/**
 * End to end: the CLI conventions of issue #12 — formats and columns, aliases and "did you mean", the
 * commands for every API capability, shell completion, the config file, TLS and remotes — as `node
 * bin/grove` child processes against real daemons (one plain on loopback, one HTTPS configured by its
 * config file as a remote) with real QEMU (TCG) and the test guest.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGuestVm, freePort, killVmsOf, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { GUEST_DIR, REPO_ROOT, READY_LINE } from '../helpers/guest.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');

let d: TestDaemon;
let scratch: string;
let xdg: string;
const children = new Set<ChildProcess>();
let remote: { proc: ChildProcess; port: number; dataDir: string; token: string; cert: string } | null = null;
let hookServer: Server | null = null;

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(GROVE_|NEMETON_|XDG_DATA_HOME$|XDG_CONFIG_HOME$|NODE_EXTRA_CA_CERTS$)/.test(k)) env[k] = v;
  }
  return { ...env, HOME: join(scratch, 'home'), XDG_CONFIG_HOME: xdg, ...extra };
}

function grove(args: string[], env: Record<string, string> = cleanEnv({ GROVE_URL: d.url, GROVE_TOKEN: d.token })): Promise<RunResult> {
  return runCommand(process.execPath, [GROVE, ...args], { env, timeoutMs: 180_000, children });
}

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

function usage(r: RunResult, pattern: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, pattern, what);
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-cliconv-'));
  xdg = join(scratch, 'config');
  mkdirSync(join(scratch, 'home'));
  d = await startDaemon();
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  hookServer?.close();
  hookServer?.closeAllConnections();
  if (remote) {
    remote.proc.kill('SIGTERM');
    await new Promise((r) => { if (remote!.proc.exitCode !== null) r(null); else remote!.proc.once('exit', r); });
    killVmsOf(remote.dataDir);
  }
  if (d) {
    try { await d.cleanup(); } finally { killVmsOf(d.dataDir); }
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ---- conventions ------------------------------------------------------------------------------------

test('aliases, did you mean, and the create help without an empty command line', async () => {
  ok(await grove(['list']), 'list');
  usage(await grove(['stat', 'x']), /unknown command 'stat'; did you mean 'start'\?/, 'stat');
  usage(await grove(['ls', '--formt', 'json']), /unknown flag '--formt'; did you mean '--format'\?/, '--formt');
  usage(await grove(['webhook', 'lst']), /unknown sub-command 'lst'; did you mean 'ls' or 'list'\?/, 'webhook lst');
  const help = ok(await grove(['create', '--help']), 'create --help');
  for (const line of help.split('\n')) assert.doesNotMatch(line, /^\s*grove\s+\[/, `a usage line with no command name: '${line}'`);
  assert.match(help, /^ {2}grove create NAME/m);
  const top = ok(await grove(['--help']), '--help');
  assert.match(top, /ls .*\(also: list\)/);
  assert.doesNotMatch(top, /__complete/);
});

test('listings: --format table|json|yaml|csv and --columns; update, reorder, errors, metrics', async () => {
  await createGuestVm(d, 'fmt-a');
  await createGuestVm(d, 'fmt-b');
  const json = JSON.parse(ok(await grove(['ls', '--format', 'json']), 'ls --format json')) as { name: string }[];
  assert.deepEqual(json.map((v) => v.name), ['fmt-a', 'fmt-b']);
  assert.deepEqual(JSON.parse(ok(await grove(['ls', '--json']), 'ls --json')), json);
  assert.equal(ok(await grove(['ls', '--format', 'csv', '--columns', 'name,state,cpu']), 'csv'), 'name,state,cpu\r\nfmt-a,stopped,1\r\nfmt-b,stopped,1\r\n');
  assert.equal(ok(await grove(['ls', '-o', 'yaml', '--columns', 'name']), 'yaml'), '- name: fmt-a\n- name: fmt-b\n');
  assert.match(ok(await grove(['ls']), 'table'), /^NAME +STATE +CPU +MEMORY/);
  usage(await grove(['ls', '--format', 'xml']), /--format must be one of table, json, yaml, csv/, 'xml');
  usage(await grove(['ls', '--columns', 'nmae']), /unknown column 'nmae'; did you mean 'name'\?/, 'bad column');

  // update (and its alias set): rename, CPUs, memory.
  ok(await grove(['update', 'fmt-b', '--name', 'fmt-c', '--cpu', '2', '--memory', '384M']), 'update');
  const c = JSON.parse(ok(await grove(['show', 'fmt-c', '--json']), 'show')) as { cpu: number; memoryMB: number };
  assert.deepEqual([c.cpu, c.memoryMB], [2, 384]);
  ok(await grove(['set', 'fmt-c', '--cpu', '1']), 'set');
  usage(await grove(['update', 'fmt-c']), /nothing to change/, 'update without a change');

  ok(await grove(['reorder', 'fmt-c', 'fmt-a']), 'reorder');
  assert.equal(ok(await grove(['ls', '--format', 'csv', '--columns', 'name']), 'order'), 'name\r\nfmt-c\r\nfmt-a\r\n');

  assert.deepEqual(JSON.parse(ok(await grove(['errors', 'fmt-a', '--format', 'json']), 'errors')), []);
  const m = JSON.parse(ok(await grove(['metrics', '--json']), 'metrics --json')) as { host: { memoryBytes: number }; vms: unknown[] };
  assert.ok(m.host.memoryBytes > 0);
  assert.equal(m.vms.length, 2);
  assert.match(ok(await grove(['metrics']), 'metrics'), /^Host: CPU .*\n\nNAME +STATE +CPU +RSS +DISK/);
  ok(await grove(['rm', 'fmt-c']), 'rm');
});

test('a running guest: console clear, stop-all, then export and import (file and transfer folder)', async () => {
  await createGuestVm(d, 'run-a');
  ok(await grove(['start', 'run-a', '--wait-for', READY_LINE, '--timeout', '120']), 'start');
  assert.match(ok(await grove(['console', 'clear', 'run-a']), 'console clear'), /Cleared the console of 'run-a'/);
  assert.doesNotMatch(ok(await grove(['console-read', 'run-a']), 'console-read'), new RegExp(READY_LINE));
  assert.match(ok(await grove(['stop-all', '--timeout', '20', '--force']), 'stop-all'), /Stopped 'run-a'\./);
  assert.equal(JSON.parse(ok(await grove(['show', 'run-a', '--json']), 'show')).state, 'stopped');
  assert.equal(ok(await grove(['stop-all']), 'stop-all again'), 'No VM was running.\n');

  const file = join(scratch, 'run-a.tar.gz');
  assert.match(ok(await grove(['export', 'run-a', '-f', file, '--gzip']), 'export'), /Exported 'run-a' to /);
  assert.equal(readFileSync(file).subarray(0, 2).toString('hex'), '1f8b');
  usage(await grove(['export', 'run-a', '-f', file]), /it exists/, 'export over a file');
  const imported = JSON.parse(ok(await grove(['import', file, '--name', 'run-b', '--json']), 'import')) as { name: string; cpu: number };
  assert.equal(imported.name, 'run-b');
  assert.match(ok(await grove(['export', 'run-a', '--transfer', 'a.tar']), 'export --transfer'), /on the daemon's host/);
  assert.ok(existsSync(join(d.dataDir, 'transfer', 'a.tar')));
  assert.equal(JSON.parse(ok(await grove(['import', '--transfer', 'a.tar', '--name', 'run-c', '--json']), 'import --transfer')).name, 'run-c');
});

test('webhook test and deliveries', async () => {
  let received = 0;
  hookServer = createServer((req, res) => { req.resume(); req.on('end', () => { received++; res.writeHead(204).end(); }); });
  await new Promise<void>((r) => hookServer!.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
  const hook = JSON.parse(ok(await grove(['webhook', 'add', url, '--events', 'webhook.test', '--json']), 'webhook add')) as { id: string };
  assert.match(ok(await grove(['webhook', 'test', hook.id]), 'webhook test'), /Queued test delivery/);
  const delivered = await waitFor('the test delivery', async () => {
    const list = JSON.parse(ok(await grove(['webhook', 'deliveries', hook.id, '--format', 'json']), 'deliveries')) as { status: string; eventType: string }[];
    return list.find((x) => x.status === 'delivered');
  });
  assert.equal(delivered.eventType, 'webhook.test');
  assert.ok(received >= 1);
  assert.match(ok(await grove(['webhook', 'deliveries', hook.id]), 'deliveries table'), /^ID +EVENT +STATUS/);
});

test('completion: scripts for bash, zsh and fish; VM names from the daemon', async () => {
  await createGuestVm(d, 'comp-vm');
  for (const shell of ['bash', 'zsh', 'fish']) assert.match(ok(await grove(['completion', shell]), shell), /grove __complete --/);
  usage(await grove(['completion', 'tcsh']), /no completion for 'tcsh'/, 'tcsh');
  const words = ok(await grove(['__complete', '--', 'start', 'comp']), '__complete').trim().split('\n');
  assert.deepEqual(words, ['comp-vm']);
  // The bash script itself, as bash runs it on <TAB> after "grove start comp".
  const script = join(scratch, 'grove.bash');
  writeFileSync(script, ok(await grove(['completion', 'bash']), 'bash'));
  const bin = join(scratch, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'grove'), `#!/bin/sh\nexec "${process.execPath}" "${GROVE}" "$@"\n`, { mode: 0o755 });
  const out = execFileSync('bash', ['-c', `source ${script}; COMP_LINE='grove start comp'; COMP_POINT=\${#COMP_LINE}; _grove_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    env: { ...cleanEnv({ GROVE_URL: d.url, GROVE_TOKEN: d.token }), PATH: `${bin}:${process.env['PATH'] ?? ''}` },
  }).toString();
  assert.equal(out, 'comp-vm\n');
});

// ---- config file, TLS, remotes ------------------------------------------------------------------------

function httpsGet(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
}

test('daemon config file: a bad file is an error naming the line', async () => {
  const bad = join(scratch, 'bad.toml');
  writeFileSync(bad, '[daemon]\nport = 23456\nlog-levle = "info"\n');
  const r = await runCommand(process.execPath, [GROVE, 'serve', '--config', bad], { env: cleanEnv(), timeoutMs: 30_000, children });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.toml:3: unknown setting 'log-levle' in \[daemon\]/);
});

test('remotes over TLS: a second daemon set up by its config file, REMOTE:VM, --all-remotes, default, mcp --remote', async () => {
  const cert = join(scratch, 'cert.pem');
  const key = join(scratch, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const dataDir = join(scratch, 'remote-data');
  const conf = join(scratch, 'remote.toml');
  writeFileSync(conf, `[daemon]\nport = ${port}\ndata-dir = "remote-data"\ntls-cert = "cert.pem"\ntls-key = "key.pem"\naccel = "tcg"\n`);
  const proc = spawn(process.execPath, [GROVE, 'serve', '--config', conf], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.stdout!.resume();
  proc.stderr!.resume();
  const ca = readFileSync(cert);
  const url = `https://127.0.0.1:${port}`;
  await waitFor('the TLS daemon', async () => (await httpsGet(`${url}/api/v1/health`, ca).catch(() => 0)) === 200, 30_000);
  remote = { proc, port, dataDir, token: readFileSync(join(dataDir, 'token'), 'utf8').trim(), cert };

  // The CLI's own config: no GROVE_URL, the local daemon through GROVE_PORT/--data-dir, the remote's CA for Node.
  const env = cleanEnv({ GROVE_DATA_DIR: d.dataDir, NODE_EXTRA_CA_CERTS: cert });
  const localEnv = { ...env, GROVE_PORT: String(d.port) };
  usage(await grove(['remote', 'add', 'lab', `http://192.0.2.1:${port}`, '--token', remote.token], env), /refusing plain HTTP to 192\.0\.2\.1/, 'plain HTTP off loopback');
  usage(await grove(['ls', '--url', 'http://192.0.2.1:22100', '--token', 'x'], env), /refusing plain HTTP/, 'ls over plain HTTP off loopback');
  assert.equal((await grove(['remote', 'add', 'lab', url, '--token', 'wrong-token-wrong-token'], env)).code, 1, 'a wrong token is found before saving');
  ok(await grove(['remote', 'add', 'lab', url, '--token', remote.token], env), 'remote add');
  const tokenFile = join(xdg, 'grove', 'tokens', 'lab');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(tokenFile, 'utf8').trim(), remote.token);
  const configText = readFileSync(join(xdg, 'grove', 'config.toml'), 'utf8');
  assert.match(configText, /\[remotes\.lab\]/);
  assert.ok(!configText.includes(remote.token), 'the token is not in the config file');

  // The remote's boot files: the test guest, in its images folder.
  mkdirSync(join(dataDir, 'images'), { recursive: true });
  for (const f of ['vmlinuz', 'initramfs.gz']) copyFileSync(join(GUEST_DIR, f), join(dataDir, 'images', f));
  ok(await grove(['create', 'lab:far-vm', '--kernel', 'vmlinuz', '--initrd', 'initramfs.gz', '--cmdline', 'console=ttyS0', '--memory', '128'], env), 'create lab:far-vm');
  assert.equal(JSON.parse(ok(await grove(['show', 'lab:far-vm', '--json'], env), 'show lab:far-vm')).name, 'far-vm');
  assert.deepEqual((JSON.parse(ok(await grove(['ls', '--remote', 'lab', '--json'], env), 'ls --remote lab')) as { name: string }[]).map((v) => v.name), ['far-vm']);
  usage(await grove(['show', 'lba:far-vm'], env), /unknown remote 'lba'.*did you mean 'lab'\?/, 'unknown remote');

  await createGuestVm(d, 'near-vm');
  const all = JSON.parse(ok(await grove(['ls', '--all-remotes', '--format', 'json'], localEnv), 'ls --all-remotes')) as { remote: string; name: string }[];
  assert.ok(all.some((v) => v.remote === 'local' && v.name === 'near-vm'));
  assert.ok(all.some((v) => v.remote === 'lab' && v.name === 'far-vm'));
  assert.match(ok(await grove(['ls', '--all-remotes'], localEnv), 'ls --all-remotes table'), /^REMOTE +NAME/);

  ok(await grove(['remote', 'default', 'lab'], env), 'remote default lab');
  assert.equal(ok(await grove(['remote', 'default'], env), 'remote default'), 'lab\n');
  assert.deepEqual((JSON.parse(ok(await grove(['ls', '--json'], env), 'ls on the default remote')) as { name: string }[]).map((v) => v.name), ['far-vm']);
  assert.ok((JSON.parse(ok(await grove(['ls', '--json'], localEnv), 'GROVE_PORT wins over the default remote')) as { name: string }[]).some((v) => v.name === 'near-vm'));
  assert.equal(JSON.parse(ok(await grove(['show', 'local:near-vm', '--json'], localEnv), 'local:near-vm')).name, 'near-vm');
  assert.match(ok(await grove(['remote', 'ls'], env), 'remote ls'), /lab \(default\) +https:\/\/127\.0\.0\.1/);
  assert.deepEqual(ok(await grove(['__complete', '--', 'show', 'lab:'], env), 'complete lab:').trim().split('\n'), ['lab:far-vm']);

  // The MCP stdio bridge to the remote.
  const m = spawn(process.execPath, [GROVE, 'mcp', '--remote', 'lab'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(m);
  let out = '';
  m.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  m.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } } })}\n`);
  m.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  m.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_vms', arguments: {} } })}\n`);
  await waitFor('the bridge\'s tools/call answer', async () => out.includes('"id":2'), 30_000);
  assert.match(out, /far-vm/);
  m.stdin!.end();

  ok(await grove(['remote', 'rm', 'lab'], env), 'remote rm');
  assert.ok(!existsSync(tokenFile), 'the token file Grove wrote is removed');
  assert.equal(ok(await grove(['remote', 'default'], env), 'default after rm'), 'local\n');
});
