/**
 * End to end: the guest agent through its other faces — MCP tools (official SDK client, Streamable HTTP)
 * and the `grove` CLI (exec, cp, ls, show) — against the real daemon, QEMU (TCG) and the test guest with
 * Debian's qemu-ga; plus the CLI's fallback to the serial console for a guest without an agent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createGuestVm, killVmsOf, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT, guestFiles } from '../helpers/guest.js';
import { assertOk, forceStop, getVm, startReady } from '../helpers/api.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');
const SLOW = { timeout: 150_000 };

let d: TestDaemon;
let mcp: Client;
let scratch: string;
const children = new Set<ChildProcess>();

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-agent-faces-'));
  d = await startDaemon();
  await createGuestVm(d, 'faces');
  await createGuestVm(d, 'plain', { cmdline: `${guestFiles().cmdline} grove.noagent` });
  await startReady(d, 'faces', { acpi: false });
  await startReady(d, 'plain', { acpi: false });
  await waitFor('the agent of faces', async () => (await getVm(d, 'faces')).agent?.connected === true, 60_000);
  mcp = new Client({ name: 'grove-e2e', version: '1' });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await mcp?.close().catch(() => undefined);
  if (d) { try { await d.cleanup(); } finally { killVmsOf(d.dataDir); } }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---- MCP --------------------------------------------------------------------------------------------

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await mcp.callTool({ name, arguments: args }, undefined, SLOW)) as CallToolResult;
}

async function ok(name: string, args: Record<string, unknown>): Promise<any> {
  const r = await call(name, args);
  assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
}

function problem(r: CallToolResult): any {
  assert.equal(r.isError, true, `expected a tool error, got ${JSON.stringify(r).slice(0, 300)}`);
  const t = r.content.find((x) => x.type === 'text');
  assert.ok(t && t.type === 'text');
  return JSON.parse(t.text);
}

test('MCP: exec and ssh_execute run in the guest through the agent', async () => {
  const names = (await mcp.listTools()).tools.map((t) => t.name);
  for (const n of ['exec', 'ssh_execute', 'vm_ip', 'file_upload', 'file_download', 'file_list']) assert.ok(names.includes(n), n);
  const ssh = await ok('ssh_execute', { vm: 'faces', command: 'echo hi; echo oops >&2; exit 4' });
  assert.equal(ssh.exitCode, 4);
  assert.equal(ssh.stdout, 'hi\n');
  assert.equal(ssh.stderr, 'oops\n');
  const ex = await ok('exec', { vm: 'faces', argv: ['sh', '-c', 'echo "$X" $(pwd)'], env: { X: 'y z' }, cwd: '/tmp' });
  assert.equal(ex.stdout, 'y z /tmp\n');
  assert.equal(problem(await call('exec', { vm: 'faces', argv: ['true'], command: 'true' })).code, 'VALIDATION_FAILED');
  assert.equal(problem(await call('ssh_execute', { vm: 'plain', command: 'true' })).code, 'GUEST_AGENT_UNAVAILABLE');
});

test('MCP: vm_ip', async () => {
  const r = await waitFor('an address', async () => { const x = await ok('vm_ip', { vm: 'faces' }); return x.ip ? x : null; });
  assert.equal(r.ip, '10.0.2.15');
  assert.ok(r.interfaces.some((i: any) => i.name === 'eth0'));
});

test('MCP: file_upload / file_download inline and through the transfer folder, file_list; host paths confined', async () => {
  assert.equal(problem(await call('file_upload', { vm: 'faces', remotePath: '/tmp/m/x', content: 'AA==' })).code, 'NOT_FOUND', 'no such directory yet');
  await ok('exec', { vm: 'faces', argv: ['mkdir', '/tmp/m'] });
  const data = randomBytes(300_000);
  assert.deepEqual(await ok('file_upload', { vm: 'faces', remotePath: '/tmp/m/inline.bin', content: data.toString('base64') }), { path: '/tmp/m/inline.bin', bytes: data.length });
  const back = await ok('file_download', { vm: 'faces', remotePath: '/tmp/m/inline.bin' });
  assert.equal(back.bytes, data.length);
  assert.equal(sha256(Buffer.from(back.content, 'base64')), sha256(data));

  const big = randomBytes(5 * 1024 * 1024 + 7);
  writeFileSync(join(d.dataDir, 'transfer', 'in.bin'), big);
  assert.deepEqual(await ok('file_upload', { vm: 'faces', localPath: 'in.bin', remotePath: '/tmp/m/big.bin', mode: '0600' }), { path: '/tmp/m/big.bin', bytes: big.length });
  const saved = await ok('file_download', { vm: 'faces', remotePath: '/tmp/m/big.bin', localPath: 'out.bin' });
  assert.equal(saved.bytes, big.length);
  assert.equal(saved.localPath, join(d.dataDir, 'transfer', 'out.bin'));
  assert.equal(sha256(readFileSync(saved.localPath)), sha256(big));
  assert.equal(problem(await call('file_download', { vm: 'faces', remotePath: '/tmp/m/big.bin', localPath: 'out.bin' })).code, 'FILE_EXISTS', 'never replaces a host file');

  const list = await ok('file_list', { vm: 'faces', path: '/tmp/m' });
  assert.deepEqual(list.entries.map((e: any) => [e.name, e.size, e.mode]), [['big.bin', big.length, '0600'], ['inline.bin', data.length, '0644']]);

  for (const localPath of ['/etc/passwd', '../token', join(d.dataDir, 'token')]) {
    assert.equal(problem(await call('file_upload', { vm: 'faces', localPath, remotePath: '/tmp/m/p' })).code, 'FORBIDDEN_PATH', `upload from ${localPath}`);
  }
  assert.equal(problem(await call('file_download', { vm: 'faces', remotePath: '/etc/hostname', localPath: '/tmp/escape' })).code, 'FORBIDDEN_PATH');
  assert.equal(problem(await call('file_download', { vm: 'faces', remotePath: '/etc/hostname', localPath: '../escape' })).code, 'FORBIDDEN_PATH');
  assert.equal(problem(await call('file_upload', { vm: 'faces', remotePath: '/tmp/m/p', localPath: 'in.bin', content: 'AA==' })).code, 'VALIDATION_FAILED');
  assert.equal(problem(await call('file_upload', { vm: 'faces', remotePath: '/tmp/m/p' })).code, 'VALIDATION_FAILED');
  assert.equal(problem(await call('file_upload', { vm: 'faces', remotePath: 'relative', content: 'AA==' })).code, 'VALIDATION_FAILED');
  assert.equal(problem(await call('file_download', { vm: 'faces', remotePath: '/tmp/m/none' })).code, 'NOT_FOUND');
});

// ---- CLI --------------------------------------------------------------------------------------------

interface Ran { code: number | null; stdout: Buffer; stderr: string }

/** `grove ARGS` against the test daemon; stdout kept as bytes. */
function grove(args: string[], input?: Buffer | string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [GROVE, ...args], {
      env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    children.add(p);
    const out: Buffer[] = [];
    let err = '';
    p.stdout!.on('data', (c: Buffer) => out.push(c));
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`grove ${args.join(' ')} hung`)); }, 120_000);
    p.on('close', (code) => { clearTimeout(timer); children.delete(p); resolve({ code, stdout: Buffer.concat(out), stderr: err }); });
    if (input !== undefined) p.stdin!.end(input);
  });
}

function okRun(r: Ran, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout.toString()}\nstderr: ${r.stderr}`);
  return r.stdout.toString();
}

test('CLI exec through the agent: streams apart, exit codes, signals, env, cwd, stdin, binary output', async () => {
  const r = await grove(['exec', 'faces', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
  assert.equal(r.code, 5);
  assert.equal(r.stdout.toString(), 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal((await grove(['exec', 'faces', '--', 'sh', '-c', 'kill -9 $$'])).code, 137);
  assert.equal(okRun(await grove(['exec', 'faces', '--env', 'A=1 2', '--cwd', '/proc', '--', 'sh', '-c', 'echo "$A" $(pwd)']), 'env cwd'), '1 2 /proc\n');
  assert.equal(okRun(await grove(['exec', '--stdin', 'faces', '--', 'wc', '-c'], randomBytes(70_000)), '--stdin').trim(), '70000');
  const bin = await grove(['exec', 'faces', "printf '\\377\\000\\376'"]);
  assert.deepEqual(bin.stdout, Buffer.from([0xff, 0x00, 0xfe]));
  const json = JSON.parse(okRun(await grove(['exec', 'faces', '--json', '--', 'echo', 'a b']), 'exec --json'));
  assert.equal(json.via, 'agent');
  assert.equal(json.stdout, 'a b\n');
  const slow = await grove(['exec', 'faces', '--timeout', '1', '--', 'sleep', '30']);
  assert.equal(slow.code, 124);
  assert.match(slow.stderr, /killed \(TIMEOUT\)/);
});

test('CLI exec falls back to the serial console when no agent answers, and says so', async () => {
  const r = await grove(['exec', 'plain', '--', 'sh', '-c', 'echo fallback-$((40+2)); exit 3']);
  assert.equal(r.code, 3);
  assert.match(r.stdout.toString(), /^fallback-42\r?$/m);
  assert.match(r.stderr, /guest agent of 'plain' does not answer; running the command on the serial console instead/);
  const withEnv = await grove(['exec', 'plain', '--env', 'V=x y', '--cwd', '/proc', '--', 'sh', '-c', 'echo "$V" $(pwd)']);
  assert.equal(withEnv.code, 0, withEnv.stderr);
  assert.match(withEnv.stdout.toString(), /^x y \/proc\r?$/m);
  const stdin = await grove(['exec', '--stdin', 'plain', '--', 'cat'], 'x');
  assert.equal(stdin.code, 1);
  assert.match(stdin.stderr, /--stdin needs it \(GUEST_AGENT_UNAVAILABLE\)/);
});

test('CLI cp both ways, to stdout, into directories; no-clobber and missing files fail', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 99);
  const local = join(scratch, 'up.bin');
  writeFileSync(local, data);
  assert.match(okRun(await grove(['cp', local, 'faces:/mnt/disk/up.bin']), 'cp up'), /^Copied 3\.0 MiB to faces:\/mnt\/disk\/up\.bin\.$/m);
  assert.equal(okRun(await grove(['exec', 'faces', '--', 'sha256sum', '/mnt/disk/up.bin']), 'sha').split(' ')[0], sha256(data));
  okRun(await grove(['cp', '--mode', '0700', local, 'faces:/tmp/']), 'cp into a guest directory');
  assert.equal(okRun(await grove(['exec', 'faces', '--', 'stat', '-c', '%a %s', '/tmp/up.bin']), 'stat'), `700 ${data.length}\n`);

  const down = join(scratch, 'down.bin');
  okRun(await grove(['cp', 'faces:/mnt/disk/up.bin', down]), 'cp down');
  assert.equal(sha256(readFileSync(down)), sha256(data));
  okRun(await grove(['cp', 'faces:/etc/hostname', scratch]), 'cp into a local directory');
  assert.equal(readFileSync(join(scratch, 'hostname'), 'utf8'), 'grove-guest\n');
  assert.equal((await grove(['cp', 'faces:/mnt/disk/up.bin', '-'])).stdout.equals(data), true, 'cp to stdout');

  const clobber = await grove(['cp', '-n', local, 'faces:/mnt/disk/up.bin']);
  assert.equal(clobber.code, 1);
  assert.match(clobber.stderr, /\(CONFLICT\)/);
  const missing = await grove(['cp', 'faces:/no/such/file', join(scratch, 'x')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\(NOT_FOUND\)/);
  assert.equal((await grove(['cp', local, join(scratch, 'other')])).code, 2, 'one side must be in a VM');
});

test('CLI ls shows the guest IP; show shows the agent', async () => {
  await waitFor('the IP in grove ls', async () => /^faces\s+running\s.*\s10\.0\.2\.15\s/m.test(okRun(await grove(['ls']), 'ls')), 30_000);
  assert.match(okRun(await grove(['ls']), 'ls'), /^NAME\s+STATE\s+CPU\s+MEMORY\s+DISK\s+IP\s+PORTS/m);
  const shown = okRun(await grove(['show', 'faces']), 'show');
  assert.match(shown, /^Agent:\s+connected \(qemu-ga 7\.2\.22, Grove test guest \(busybox 1\.35\.0\)\)$/m);
  assert.match(shown, /^IP:\s+10\.0\.2\.15$/m);
  assert.match(okRun(await grove(['show', 'plain']), 'show plain'), /^Agent:\s+not answering$/m);
});

test('MCP and CLI on a stopped VM: INVALID_STATE', async () => {
  await forceStop(d, 'faces');
  assert.equal(problem(await call('exec', { vm: 'faces', argv: ['true'] })).code, 'INVALID_STATE');
  assert.equal(problem(await call('file_list', { vm: 'faces', path: '/' })).code, 'INVALID_STATE');
  const r = await grove(['exec', 'faces', '--', 'true']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /stopped.*\(INVALID_STATE\)/);
  assert.equal(assertOk(await d.call('GET', '/vms/faces'), 200, 'get').agent, null);
});
