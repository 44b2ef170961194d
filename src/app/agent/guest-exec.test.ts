import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainError } from '../../domain/errors.js';
import type { GuestAgent, GuestExecStatus } from '../../ports/guest-agent.js';
import { encodeOutput, execArgv, runInGuest } from './guest-exec.js';
import { IN_DIRECTORY, KILL_TREE, SCRIPT_NAME } from './guest-scripts.js';

const refused = (fn: () => unknown, field: string) => assert.throws(fn, (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED' && e.extra.field === field);

test('argv runs as given; a command goes to /bin/sh -c as one argument', () => {
  assert.deepEqual(execArgv({ argv: ['ls', '-l', '$(x)'] }), ['ls', '-l', '$(x)']);
  assert.deepEqual(execArgv({ command: 'echo a | wc' }), ['/bin/sh', '-c', 'echo a | wc']);
});

test('env goes through /usr/bin/env, cwd through a fixed program taking the directory as $1', () => {
  assert.deepEqual(execArgv({ argv: ['printenv'], env: { A: '1 2', B: '$(x)' } }), ['/usr/bin/env', 'A=1 2', 'B=$(x)', 'printenv']);
  assert.deepEqual(execArgv({ command: 'pwd', cwd: '/tmp/a b', env: { X: 'y' } }),
    ['/bin/sh', '-c', IN_DIRECTORY, SCRIPT_NAME, '/tmp/a b', '/usr/bin/env', 'X=y', '/bin/sh', '-c', 'pwd']);
});

test('what cannot be run as asked is refused', () => {
  refused(() => execArgv({}), 'argv');
  refused(() => execArgv({ argv: ['a'], command: 'b' }), 'command');
  refused(() => execArgv({ argv: [] }), 'argv');
  refused(() => execArgv({ argv: ['true'], env: { 'A-B': '1' } }), 'env');
  refused(() => execArgv({ argv: ['X=1'], env: { A: '1' } }), 'argv');
  refused(() => execArgv({ argv: ['true'], cwd: 'tmp' }), 'cwd');
  refused(() => execArgv({ argv: ['a\0b'] }), 'argv');
});

test('output is text when it is UTF-8, else base64; a cut character at a truncation does not count', () => {
  assert.deepEqual(encodeOutput(Buffer.from('grüße\n'), false), { data: 'grüße\n', encoding: 'utf8' });
  assert.deepEqual(encodeOutput(Buffer.from([0xff, 0x00]), false), { data: '/wA=', encoding: 'base64' });
  const cut = Buffer.from('aü').subarray(0, 2);
  assert.deepEqual(encodeOutput(cut, true), { data: 'a', encoding: 'utf8' });
  assert.equal(encodeOutput(cut, false).encoding, 'base64');
});

/** An agent whose process runs for `runsMs` (or until killed) and prints `out`. */
function fakeAgent(opts: { runsMs: number; out?: Buffer }): GuestAgent & { execs: { path: string; args: string[] }[] } {
  const execs: { path: string; args: string[] }[] = [];
  let startedAt = 0;
  let killed = false;
  const agent = {
    execs,
    async exec(req: { path: string; args: string[] }) {
      execs.push({ path: req.path, args: req.args });
      if (execs.length === 1) startedAt = Date.now();
      else killed = true;
      return 100 + execs.length;
    },
    async execStatus(pid: number): Promise<GuestExecStatus> {
      assert.equal(pid, 101);
      const exited = killed || Date.now() - startedAt >= opts.runsMs;
      return {
        exited, exitCode: exited && !killed ? 0 : null, signal: killed ? 9 : null, stdout: exited ? opts.out ?? Buffer.alloc(0) : Buffer.alloc(0),
        stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false,
      };
    },
  };
  return agent as unknown as GuestAgent & { execs: typeof execs };
}

test('runInGuest polls until the process ends and caps its output', async () => {
  const agent = fakeAgent({ runsMs: 30, out: Buffer.from('x'.repeat(50)) });
  const r = await runInGuest(agent, ['echo'], { timeoutMs: 5000, maxOutputBytes: 10 });
  assert.equal(r.exitCode, 0);
  assert.equal(r.timedOut, false);
  assert.equal(r.stdout.toString(), 'x'.repeat(10));
  assert.equal(r.truncated, true);
  assert.equal(agent.execs.length, 1);
});

test('runInGuest kills the process tree at the deadline and reports timedOut', async () => {
  const agent = fakeAgent({ runsMs: 60_000 });
  const r = await runInGuest(agent, ['sleep', '60'], { timeoutMs: 50, maxOutputBytes: 10 });
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, null);
  assert.equal(r.signal, 9);
  assert.deepEqual(agent.execs[1], { path: '/bin/sh', args: ['-c', KILL_TREE, SCRIPT_NAME, '101'] });
});
