import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../../test/helpers/api.js';

/**
 * Polls every `everyMs` until the process is gone (isAlive: a zombie counts as gone, since a daemonized
 * QEMU is reaped by init, maybe late); false if it is still there after `timeoutMs`.
 */
export async function waitGone(pid: number, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

export async function killAndWait(pid: number, timeoutMs = 5000): Promise<void> {
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  if (!(await waitGone(pid, timeoutMs))) throw new Error(`process ${pid} survived SIGKILL for ${timeoutMs} ms`);
}
