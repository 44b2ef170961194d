import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** True while `pid` exists and is not a zombie (a daemonized QEMU is reaped by init, maybe late). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Polls every `everyMs` until the process is gone; false if it is still there after `timeoutMs`. */
export async function waitGone(pid: number, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

export async function killAndWait(pid: number, timeoutMs = 5000): Promise<void> {
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  if (!(await waitGone(pid, timeoutMs))) throw new Error(`process ${pid} survived SIGKILL for ${timeoutMs} ms`);
}
