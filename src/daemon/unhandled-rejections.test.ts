import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('an unhandled rejection is logged and the process goes on', async () => {
  // In a process of its own: the handler is process-wide, and the outcome to check is that the process lives.
  const script = `
    import pino from 'pino';
    import { logUnhandledRejections } from ${JSON.stringify(new URL('./unhandled-rejections.js', import.meta.url).href)};
    logUnhandledRejections(pino({ base: null }, pino.destination({ fd: 1, sync: true })));
    Promise.reject(new Error('nobody waits for me'));
    setImmediate(() => process.stdout.write('still running\\n'));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT });
  const [logLine, after] = stdout.trim().split('\n');
  const entry = JSON.parse(logLine!) as { level: number; msg: string; err: { message: string; stack: string } };
  assert.equal(entry.level, 50);
  assert.equal(entry.msg, 'unhandled promise rejection (a bug in Grove); the daemon keeps running');
  assert.equal(entry.err.message, 'nobody waits for me');
  assert.match(entry.err.stack, /nobody waits for me/);
  assert.equal(after, 'still running');
});
