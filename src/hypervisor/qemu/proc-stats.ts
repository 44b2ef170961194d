import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

/** Linux USER_HZ; it is 100 on every architecture Linux supports in practice. */
const CLK_TCK = 100;

/**
 * The fields of /proc/<pid>/stat after the command name, so `[0]` is the state (field 3 in proc(5)).
 * The command name (field 2) may contain spaces and parentheses: split after its last ')'.
 */
async function procStatFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export async function procCpuSeconds(pid: number): Promise<number> {
  const fields = await procStatFields(pid);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

export async function procRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export async function procCmdline(pid: number): Promise<string[] | null> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s) => s.length > 0);
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A killed multi-threaded process shows its leader as a zombie while its other threads are still being
 * torn down, and those still hold its files (and so QEMU's image locks): ended means no thread but the
 * leader is left and no file is open.
 */
async function threadsEnded(pid: number): Promise<boolean> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
  return tasks.length <= 1 && fds.length === 0;
}

/**
 * Waits until the process has really ended (gone, or a zombie nobody reaped yet). QEMU closes its QMP
 * socket a moment before it exits and releases its image locks; a start right after a stop must not
 * find the disk still locked.
 */
export async function waitForProcessEnd(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await procStatFields(pid).then((f) => f[0], () => null);
    if (state === null || state === 'X' || (state === 'Z' && await threadsEnded(pid))) return true;
    if (Date.now() > deadline) return false;
    await delay(2);
  }
}
