import { rename, writeFile } from 'node:fs/promises';
import type { ConsoleLogReader, VmPaths } from '../ports/hypervisor.js';
import { readOffsetFile, readRange, sizeOr0 } from '../util/files.js';
import { run } from '../util/run.js';

/**
 * Console history as one byte sequence: earlier boots (`console.history`) followed by the current boot
 * (`console.out`, written by QEMU). A VM that never ran simply has an empty console.
 *
 * Old output is let go by punching holes (fallocate), not by rewriting: QEMU keeps writing `console.out`
 * at its own file position, so the only way to free its space without moving every later offset is to
 * deallocate the blocks underneath. Offsets stay absolute and identical across restarts; `console.start`
 * records how far the history has been let go.
 */
export class ConsoleLogFile implements ConsoleLogReader {
  async size(paths: VmPaths): Promise<number> {
    const [h, o] = await Promise.all([sizeOr0(paths.consoleHistory), sizeOr0(paths.consoleOut)]);
    return h + o;
  }

  async read(paths: VmPaths, from: number, length: number): Promise<Buffer> {
    const h = await sizeOr0(paths.consoleHistory);
    const parts: Buffer[] = [];
    if (from < h) parts.push(await readRange(paths.consoleHistory, from, Math.min(length, h - from)));
    const got = parts[0]?.length ?? 0;
    if (got < length) parts.push(await readRange(paths.consoleOut, Math.max(0, from - h), length - got));
    return Buffer.concat(parts);
  }

  start(paths: VmPaths): Promise<number> {
    return readConsoleStart(paths);
  }

  async trim(paths: VmPaths, before: number): Promise<number> {
    const [start, h, total] = await Promise.all([readConsoleStart(paths), sizeOr0(paths.consoleHistory), this.size(paths)]);
    const to = Math.min(before, total);
    if (to <= start) return start;
    // The mark goes first: should punching fail half-way, reads still never serve the bytes let go.
    await writeConsoleStart(paths, to);
    if (start < h) await punchHole(paths.consoleHistory, start, Math.min(to, h) - start);
    if (to > h) await punchHole(paths.consoleOut, Math.max(0, start - h), to - Math.max(start, h));
    return to;
  }
}

function readConsoleStart(paths: VmPaths): Promise<number> {
  return readOffsetFile(paths.consoleStart);
}

async function writeConsoleStart(paths: VmPaths, offset: number): Promise<void> {
  const partial = `${paths.consoleStart}.partial`;
  await writeFile(partial, `${offset}\n`, { mode: 0o600 });
  await rename(partial, paths.consoleStart);
}

/**
 * Frees the blocks of [offset, offset+length) and keeps the file's size. util-linux's fallocate, as
 * Node has no fallocate(2); a filesystem without hole punching keeps the bytes (only space is lost).
 */
async function punchHole(file: string, offset: number, length: number): Promise<void> {
  if (length <= 0) return;
  await run('fallocate', ['--punch-hole', '--keep-size', '--offset', String(offset), '--length', String(length), file], 30_000);
}
