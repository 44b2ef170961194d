// A small filesystem for the data dir, to run it full: a tmpfs under /tmp (root only), and a filler file
// that takes every free byte until it is removed.
import { closeSync, fstatSync, ftruncateSync, mkdtempSync, openSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/util/run.js';

export interface SmallFs { dir: string; fill(leaveBytes?: number): number; free(): void; freeBytes(): number; unmount(): Promise<void> }

export async function mountTmpfs(sizeMiB: number): Promise<SmallFs> {
  const dir = mkdtempSync(join(tmpdir(), 'grove-fullfs-'));
  const r = await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], 10_000);
  if (r.code !== 0) throw new Error(`mount tmpfs on ${dir} failed (root is needed): ${r.stderr}`);
  const filler = join(dir, 'filler');
  return {
    dir,
    /** Writes until ENOSPC, then gives back `leaveBytes`; returns the bytes taken. */
    fill(leaveBytes = 0) {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(1024 * 1024, 0x5a);
      let n = 0;
      try {
        for (let size = chunk.length; size >= 512;) {
          try { n += writeSync(fd, chunk, 0, size); } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
            size = size / 2;
          }
        }
        if (leaveBytes > 0) {
          const size = fstatSync(fd).size;
          ftruncateSync(fd, Math.max(0, size - leaveBytes));
          n -= Math.min(n, leaveBytes);
        }
      } finally { closeSync(fd); }
      return n;
    },
    free() { try { unlinkSync(filler); } catch { /* not filled */ } },
    freeBytes() { const s = statfsSync(dir); return s.bavail * s.bsize; },
    async unmount() {
      const u = await run('umount', ['-l', dir], 10_000);
      if (u.code !== 0) throw new Error(`umount ${dir}: ${u.stderr}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
