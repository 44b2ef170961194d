import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLOSE_STDIN, JOB_RUN, JOB_SCRIPT_NAME, SIGNAL_JOB } from './job-scripts.js';

// The wrapper runs here under the host's /bin/sh (dash on Debian), as it does in a Debian guest.

function sh(script: string, args: string[], stdin?: string): Promise<number> {
  const p = spawn('/bin/sh', ['-c', script, JOB_SCRIPT_NAME, ...args], { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'ignore'] });
  if (stdin !== undefined) p.stdin!.end(stdin);
  return new Promise((resolve) => p.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15))));
}

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const root = await mkdtemp(join(tmpdir(), 'grove-job-scripts-'));
  try { return await f(join(root, 'job')); } finally { await rm(root, { recursive: true, force: true }); }
}

async function started(dir: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await readFile(join(dir, 'pid'), 'utf8').then((s) => s.trim() !== '', () => false)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the wrapper never wrote its pid');
}

test('closing an interactive stdin keeps the command\'s own exit status, every time', async () => {
  // The end of input interrupts the wrapper's wait with SIGUSR1; the command exits at once after it.
  // Before the status file, the wrapper could record the interrupted wait's 138 instead of the 3.
  for (let round = 0; round < 25; round++) {
    await withDir(async (dir) => {
      const wrapper = spawn('/bin/sh', ['-c', JOB_RUN, JOB_SCRIPT_NAME, dir, '1', 'sh', '-c', 'cat >/dev/null; exit 3'], { stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => wrapper.on('exit', (code) => r(code)));
      await started(dir);
      await writeFile(join(dir, 'stdin'), 'data\n');
      assert.equal(await sh(CLOSE_STDIN, [dir, String(wrapper.pid)]), 0);
      assert.equal(await exited, 3, `round ${round}`);
      assert.equal((await readFile(join(dir, 'exit'), 'utf8')).trim(), '3', `round ${round}`);
    });
  }
});

test('a signal the command dies of is recorded as 128 + n; one it handles leaves its own status', async () => {
  await withDir(async (dir) => {
    const run = sh(JOB_RUN, [dir, '0', 'sleep', '30'], '');
    await started(dir);
    assert.equal(await sh(SIGNAL_JOB, [dir, 'TERM']), 0);
    assert.equal(await run, 143);
    assert.equal((await readFile(join(dir, 'exit'), 'utf8')).trim(), '143');
  });
  await withDir(async (dir) => {
    const run = sh(JOB_RUN, [dir, '0', 'sh', '-c', 'trap "exit 7" HUP; sleep 30 & wait'], '');
    await started(dir);
    assert.equal(await sh(SIGNAL_JOB, [dir, 'HUP']), 0);
    assert.equal(await run, 7);
  });
});
