/**
 * End to end: the `grove` CLI as a user runs it — `node bin/grove ...` child processes against the real
 * daemon (harness), real QEMU (TCG) and the test guest. One guest VM ('cli') carries the lifecycle tests;
 * everything the tests start is ended in `after`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killVmsOf, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT, READY_LINE, guestFiles } from '../helpers/guest.js';
import { waitAcpiReady } from '../helpers/api.js';
import { latestEventId } from '../helpers/events.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');
const RUN_TIMEOUT_MS = 120_000;

let d: TestDaemon;
let scratch: string;
const children = new Set<ChildProcess>();

/** The caller's environment without any Grove/Nemeton connection settings, so each test sets its own. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(GROVE_|NEMETON_|XDG_DATA_HOME$)/.test(k)) env[k] = v;
  }
  // An empty home: the default data dir (~/.local/share/grove) then holds no token.
  return { ...env, HOME: join(scratch, 'home'), ...extra };
}

/** Runs `grove ARGS` to completion; by default pointed at the test daemon through GROVE_URL/GROVE_TOKEN. */
function grove(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<RunResult> {
  const env = opts.env ?? cleanEnv({ GROVE_URL: d.url, GROVE_TOKEN: d.token });
  return runCommand(process.execPath, [GROVE, ...args], { env, input: opts.input ?? '', timeoutMs: RUN_TIMEOUT_MS, children });
}

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** A long-running child (events, console) whose output is collected; `until` waits for text in it. */
function follow(cmd: string, args: string[], env: Record<string, string>) {
  const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(p);
  let out = '';
  p.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  p.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((r) => p.on('close', (code) => { children.delete(p); r(code); }));
  return {
    proc: p,
    output: () => out,
    exited,
    async until(pred: (out: string) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!pred(out)) {
        if (p.exitCode !== null) throw new Error(`${what}: process exited (${p.exitCode}) first:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

async function state(ref: string): Promise<string> {
  return (await d.call('GET', `/vms/${ref}`)).body.state;
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-cli-'));
  mkdirSync(join(scratch, 'home'));
  d = await startDaemon();
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (d) {
    if (process.env['GROVE_E2E_DEBUG']) console.log(d.output());
    try { await d.cleanup(); } finally { killVmsOf(d.dataDir); }
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ---- usage, help, connection ------------------------------------------------------------------------

test('help and usage errors: 0 for help, 2 for bad usage', async () => {
  const help = await grove(['--help']);
  assert.equal(help.code, 0);
  for (const word of ['ls', 'create NAME', 'exec VM -- CMD', 'console VM', 'events', 'webhook ls', 'Exit codes', '124']) {
    assert.ok(help.stdout.includes(word), `--help mentions '${word}'`);
  }
  assert.match((await grove(['exec', '--help'])).stdout, /serial console/);

  for (const args of [['frobnicate'], ['ls', '--bogus'], ['show'], ['exec', 'x'], ['create', 'x', '--memory', 'lots'], ['webhook'], ['start', 'x', '--timeout', '5'], ['ls', '--url', 'not a url']]) {
    const r = await grove(args);
    assert.equal(r.code, 2, `grove ${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, /^grove: .*\(USAGE\)/, `grove ${args.join(' ')}`);
  }
});

test('daemon unreachable: exit 3', async () => {
  const r = await grove(['ls', '--url', `http://127.0.0.1:${await freePort()}`]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /^grove: cannot reach the Grove daemon .*\(UNREACHABLE\)/);
});

test('token and URL from flags, GROVE_*/NEMETON_* env and the data dir', async () => {
  const ls = (env: Record<string, string>, extra: string[] = []) => grove(['ls', '--json', ...extra], { env: cleanEnv(env) });

  // No token anywhere (empty HOME, no env): the daemon says 401, exit 1, with a hint where we looked.
  const none = await ls({ GROVE_URL: d.url });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /\(UNAUTHORIZED\)/);
  assert.match(none.stderr, /token from .*token/);

  ok(await ls({ GROVE_URL: d.url }, ['--token', d.token]), '--token');
  ok(await ls({}, ['--url', d.url, '--token', d.token]), '--url --token');
  ok(await ls({ GROVE_URL: d.url, GROVE_TOKEN: d.token }), 'GROVE_URL + GROVE_TOKEN');
  ok(await ls({ NEMETON_PORT: String(d.port), NEMETON_TOKEN: d.token }), 'NEMETON_PORT + NEMETON_TOKEN');
  ok(await ls({ GROVE_PORT: String(d.port) }, ['--data-dir', d.dataDir]), 'GROVE_PORT + --data-dir (its token file)');
  ok(await ls({ GROVE_PORT: String(d.port), GROVE_DATA_DIR: d.dataDir }), 'GROVE_DATA_DIR');
  const xdg = join(scratch, 'xdg');
  mkdirSync(join(xdg, 'grove'), { recursive: true });
  writeFileSync(join(xdg, 'grove', 'token'), `${d.token}\n`, { mode: 0o600 });
  ok(await ls({ GROVE_PORT: String(d.port), XDG_DATA_HOME: xdg }), '$XDG_DATA_HOME/grove/token');
  const home = join(scratch, 'home2');
  mkdirSync(join(home, '.local', 'share', 'grove'), { recursive: true });
  writeFileSync(join(home, '.local', 'share', 'grove', 'token'), d.token, { mode: 0o600 });
  ok(await ls({ GROVE_PORT: String(d.port), HOME: home }), '~/.local/share/grove/token');

  // Flags win over the environment.
  ok(await ls({ GROVE_URL: 'http://127.0.0.1:1', GROVE_TOKEN: 'wrong-token-wrong-token' }, ['--url', d.url, '--token', d.token]), 'flags over env');
  const wrong = await ls({ GROVE_URL: d.url, GROVE_TOKEN: d.token }, ['--token', 'wrong-token-wrong-token']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /wrong token \(UNAUTHORIZED\)/);
});

test('unknown VM: exit 1 with VM_NOT_FOUND on stderr', async () => {
  for (const args of [['show', 'no-such-vm'], ['start', 'no-such-vm'], ['exec', 'no-such-vm', '--', 'true'], ['console', 'no-such-vm'], ['rm', 'no-such-vm']]) {
    const r = await grove(args);
    assert.equal(r.code, 1, `grove ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^grove: .*no-such-vm.* \(VM_NOT_FOUND\)\n/, `grove ${args.join(' ')}`);
    assert.equal(r.stdout, '');
  }
});

// ---- one VM through its life ------------------------------------------------------------------------

test('create, ls (table and --json), show', async () => {
  const g = guestFiles();
  const created = JSON.parse(ok(await grove([
    'create', 'cli', '--kernel', 'vmlinuz', '--initrd', 'initramfs.gz', '--cmdline', g.cmdline,
    '--memory', '256', '--disk', '1G', '--cpu', '1', '--port-forward', `${await freePort()}:22`, '--json',
  ]), 'create'));
  assert.equal(created.name, 'cli');
  assert.equal(created.state, 'stopped');
  assert.equal(created.memoryMB, 256);
  assert.equal(created.network.portForwards[0].guest, 22);

  const dup = await grove(['create', 'cli', '--kernel', 'vmlinuz']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /\((CONFLICT|VALIDATION_FAILED)\)/);

  const table = ok(await grove(['ls']), 'ls').trimEnd().split('\n');
  assert.match(table[0]!, /^NAME\s+STATE\s+CPU\s+MEMORY\s+DISK\s+IP\s+PORTS\s+UPTIME\s+ID$/);
  const row = table.find((l) => l.startsWith('cli '));
  assert.ok(row, `a row for cli in:\n${table.join('\n')}`);
  assert.match(row, /^cli\s+stopped\s+1\s+256 MiB\s+1 GiB\s+-\s/);
  // Columns line up: every row's STATE starts where the header's does.
  assert.equal(row.indexOf('stopped'), table[0]!.indexOf('STATE'));

  const list = JSON.parse(ok(await grove(['ls', '--json']), 'ls --json'));
  assert.ok(Array.isArray(list));
  assert.equal(list.find((v: { name: string }) => v.name === 'cli').id, created.id);

  const show = ok(await grove(['show', 'cli']), 'show');
  assert.match(show, /^Name:\s+cli$/m);
  assert.match(show, new RegExp(`^ID:\\s+${created.id}$`, 'm'));
  assert.equal(JSON.parse(ok(await grove(['show', created.id, '--json']), 'show --json')).name, 'cli');
});

test('start --wait-for, exec (output and exit codes), send, console-read, pause/resume', async () => {
  const started = ok(await grove(['start', 'cli', '--wait-for', READY_LINE, '--timeout', '90']), 'start --wait-for');
  assert.match(started, /Started VM 'cli'.*GROVE-GUEST-READY/);
  assert.equal(await state('cli'), 'running');

  const again = await grove(['start', 'cli']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /\(INVALID_STATE\)/);

  const uname = await grove(['exec', 'cli', '--', 'uname', '-a']);
  assert.equal(uname.code, 0, uname.stderr);
  assert.match(uname.stdout, /^Linux \S+ .*x86_64/m);

  const seven = await grove(['exec', 'cli', '--', 'sh', '-c', 'exit 7']);
  assert.equal(seven.code, 7, seven.stderr);

  const json = JSON.parse(ok(await grove(['exec', 'cli', '--serial', '--json', '--', 'echo', 'a b', "it's"]), 'exec --serial --json'));
  assert.equal(json.via, 'serial');
  assert.equal(json.exitCode, 0);
  assert.match(json.output, /^a b it's\r?$/m);
  const pipeline = await grove(['exec', 'cli', 'echo one two | wc -w']);
  assert.equal(pipeline.code, 0);
  assert.match(pipeline.stdout, /^\s*2\r?$/m);

  const slow = await grove(['exec', 'cli', '--timeout', '2', '--', 'sleep', '30']);
  assert.equal(slow.code, 124, `exec timeout: ${slow.stderr}`);
  assert.match(slow.stderr, /\(TIMEOUT\)/);
  assert.equal((await grove(['exec', 'cli', '--', 'true'])).code, 0, 'the shell works again after the timeout');

  ok(await grove(['send', 'cli', 'echo sent-$((20+3))', '--enter']), 'send');
  await waitFor('the sent command\'s output in console-read', async () =>
    /^sent-23\r?$/m.test(ok(await grove(['console-read', 'cli', '--limit', '4096', '--strip-ansi']), 'console-read')), 10_000);
  const page = JSON.parse(ok(await grove(['console-read', 'cli', '--since', '0', '--limit', '64', '--json']), 'console-read --json'));
  assert.equal(page.offset, 0);
  assert.ok(page.nextOffset > 0 && page.nextOffset <= 64 && page.truncated === true);

  assert.match(ok(await grove(['pause', 'cli']), 'pause'), /Paused VM 'cli'/);
  assert.equal(await state('cli'), 'paused');
  assert.equal(JSON.parse(ok(await grove(['resume', 'cli', '--json']), 'resume')).state, 'running');
});

test('events: follows and prints lifecycle events (lines and --json)', async () => {
  const env = cleanEnv({ GROVE_URL: d.url, GROVE_TOKEN: d.token });
  // Each follower replays from the current newest id, so it sees this test's events however long it takes to connect.
  const since = String(await latestEventId(d));
  const lines = follow(process.execPath, [GROVE, 'events', '--types', 'vm.*', '--vm', 'cli', '--since', since], env);
  const jsonl = follow(process.execPath, [GROVE, 'events', '--json', '--types', 'vm.paused,vm.resumed', '--since', since], env);
  ok(await grove(['pause', 'cli']), 'pause');
  ok(await grove(['resume', 'cli']), 'resume');

  await jsonl.until((o) => o.includes('"vm.resumed"'), 'vm.resumed (json)');
  const events = jsonl.output().trim().split('\n').map((l) => JSON.parse(l));
  const paused = events.find((e) => e.type === 'vm.paused');
  assert.ok(paused, `vm.paused in ${jsonl.output()}`);
  assert.equal(paused.vmName, 'cli');
  assert.ok(Number.isInteger(paused.id));
  assert.ok(events.every((e) => e.type === 'vm.paused' || e.type === 'vm.resumed'), 'the type filter holds');

  await lines.until((o) => /vm\.resumed\s+cli/.test(o), 'vm.resumed (line)');

  assert.match(lines.output(), /^\S+Z\s+#\d+\s+vm\.paused\s+cli\s/m);

  for (const f of [lines, jsonl]) f.proc.kill('SIGINT');
  for (const f of [lines, jsonl]) assert.equal(await f.exited, 0, 'ctrl-c ends events with exit 0');
});

test('console: interactive attach through a pseudo-terminal, detach with ctrl-]', async () => {
  // util-linux `script` gives the CLI a real terminal; afterwards `stty -a` shows the mode it left behind.
  const env = cleanEnv({ GROVE_URL: d.url, GROVE_TOKEN: d.token, SHELL: '/bin/sh' });
  const cmd = `'${process.execPath}' '${GROVE}' console cli; rc=$?; echo; stty -a; exit $rc`;
  const t = follow('script', ['-qfec', cmd, '/dev/null'], env);
  await t.until((o) => o.includes('Detach with ctrl-]'), 'the attach banner');
  t.proc.stdin!.write('echo hi-$((6*7))\r');
  await t.until((o) => /^hi-42\r?$/m.test(o), 'hi-42 from the guest');
  t.proc.stdin!.write('\x1d');
  assert.equal(await t.exited, 0, `console exit code:\n${t.output()}`);
  const out = t.output();
  assert.match(out, /Detached\./);
  const after = out.slice(out.indexOf('Detached.'));
  assert.match(after, /(^|[\s;])icanon\b/, `terminal back in canonical mode:\n${after}`);
  assert.match(after, /(^|[\s;])echo\b/, 'echo restored');
  assert.doesNotMatch(after, /-icanon\b/);
});

test('webhook add, ls, rm', async () => {
  const added = JSON.parse(ok(await grove(['webhook', 'add', 'http://127.0.0.1:9/hook', '--events', 'vm.*,snapshot.created', '--secret', 'a-long-enough-secret-1234', '--description', 'cli test', '--json']), 'webhook add'));
  assert.deepEqual(added.events, ['vm.*', 'snapshot.created']);
  assert.equal(added.hasSecret, true);
  assert.equal(added.secret, undefined);
  const table = ok(await grove(['webhook', 'ls']), 'webhook ls');
  assert.match(table, /^ID\s+URL\s+EVENTS/);
  assert.ok(table.includes(added.id) && table.includes('http://127.0.0.1:9/hook'));
  assert.match(ok(await grove(['webhook', 'rm', added.id]), 'webhook rm'), /Removed webhook/);
  assert.deepEqual(JSON.parse(ok(await grove(['webhook', 'ls', '--json']), 'webhook ls --json')).filter((h: { id: string }) => h.id === added.id), []);
  const gone = await grove(['webhook', 'rm', added.id]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /\(NOT_FOUND\)/);
});

test('mcp: stdio bridge answers initialize and tools/list', async () => {
  const msgs = [
    { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'cli-test', version: '1' } } },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 2, method: 'tools/list' },
  ];
  const env = cleanEnv({ NEMETON_PORT: String(d.port), NEMETON_TOKEN: d.token });
  const m = follow(process.execPath, [GROVE, 'mcp'], env);
  m.proc.stdin!.write(msgs.map((x) => JSON.stringify(x)).join('\n') + '\n');
  await m.until((o) => o.includes('"id":2'), 'the tools/list answer');
  m.proc.stdin!.end();
  assert.equal(await m.exited, 0);
  const replies = m.output().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const tools = replies.find((r) => r.id === 2).result.tools.map((t: { name: string }) => t.name);
  assert.ok(tools.includes('list_vms') && tools.includes('start_vm'), tools.join(','));

  const down = await grove(['mcp'], { env: cleanEnv({ GROVE_URL: `http://127.0.0.1:${await freePort()}`, GROVE_TOKEN: d.token }) });
  assert.equal(down.code, 3);
});

test('stop, start + kill, restart --hard, rm (and rm --force of a running VM)', async () => {
  await waitAcpiReady(d, 'cli');
  assert.match(ok(await grove(['stop', 'cli', '--timeout', '60']), 'stop'), /Stopped VM 'cli'/);
  assert.equal(await state('cli'), 'stopped');

  ok(await grove(['start', 'cli']), 'start');
  assert.equal(JSON.parse(ok(await grove(['kill', 'cli', '--json']), 'kill')).state, 'stopped');

  ok(await grove(['start', 'cli']), 'start again');
  assert.match(ok(await grove(['restart', 'cli', '--hard']), 'restart --hard'), /Restarted VM 'cli'/);
  assert.equal(await state('cli'), 'running');
  const busy = await grove(['rm', 'cli']);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /\(INVALID_STATE\)/);
  assert.match(ok(await grove(['rm', 'cli', '--force']), 'rm --force'), /Deleted VM 'cli'/);
  const gone = await grove(['show', 'cli']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /\(VM_NOT_FOUND\)/);
});
