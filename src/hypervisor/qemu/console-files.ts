import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat, truncate } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { VmPaths } from '../../ports/hypervisor.js';
import { run } from '../../util/run.js';
import { readOffsetFile, sizeOr0 } from '../../util/files.js';

/**
 * Readies the console files for a new QEMU: the previous boot's output moves to the end of the history
 * file (so global offsets do not change), `console.out` starts empty, and the input FIFO exists.
 */
export async function prepareConsoleFiles(paths: VmPaths): Promise<void> {
  const previous = await sizeOr0(paths.consoleOut);
  if (previous > 0) {
    // Only the part still kept is copied, to the same offset: what was let go stays a hole in the
    // history as it was one in console.out, so offsets do not move and no space comes back.
    const h = await sizeOr0(paths.consoleHistory);
    const from = Math.min(previous, Math.max(0, (await readOffsetFile(paths.consoleStart)) - h));
    await (await open(paths.consoleHistory, 'a', 0o600)).close();
    if (from < previous) {
      // Streamed: a chatty guest's console.out can be far larger than is sensible to hold in memory.
      // `end` pins the copy to the size seen, though no QEMU writes the file while this runs.
      await pipeline(createReadStream(paths.consoleOut, { start: from, end: previous - 1 }), createWriteStream(paths.consoleHistory, { flags: 'r+', start: h + from }));
    }
    await truncate(paths.consoleHistory, h + previous);
    const fh = await open(paths.consoleHistory, 'r');
    await fh.sync().finally(() => fh.close());
    await truncate(paths.consoleOut, 0);
  } else {
    await (await open(paths.consoleOut, 'a')).close();
  }
  const isFifo = await stat(paths.consoleIn).then((s) => s.isFIFO(), () => false);
  if (!isFifo) {
    await rm(paths.consoleIn, { force: true });
    // Node has no mkfifo(3); coreutils' mkfifo is on every Linux host QEMU runs on.
    const r = await run('mkfifo', ['-m', '600', paths.consoleIn], 10_000);
    if (r.code !== 0) throw new Error(`mkfifo ${paths.consoleIn} failed: ${r.stderr.trim()}`);
  }
}

export function historySize(paths: VmPaths): Promise<number> {
  return sizeOr0(paths.consoleHistory);
}
