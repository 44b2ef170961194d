import { open, stat } from 'node:fs/promises';
import type { ConsoleLogReader, VmPaths } from '../ports/hypervisor.js';

/**
 * Console history as one byte sequence: earlier boots (`console.history`) followed by the current boot
 * (`console.out`, written by QEMU). A VM that never ran simply has an empty console.
 */
export class ConsoleLogFile implements ConsoleLogReader {
  async size(paths: VmPaths): Promise<number> {
    const [h, o] = await Promise.all([fileSize(paths.consoleHistory), fileSize(paths.consoleOut)]);
    return h + o;
  }

  async read(paths: VmPaths, from: number, length: number): Promise<Buffer> {
    const h = await fileSize(paths.consoleHistory);
    const parts: Buffer[] = [];
    if (from < h) parts.push(await readAt(paths.consoleHistory, from, Math.min(length, h - from)));
    const got = parts[0]?.length ?? 0;
    if (got < length) parts.push(await readAt(paths.consoleOut, Math.max(0, from - h) + 0, length - got));
    return Buffer.concat(parts);
  }
}

function fileSize(p: string): Promise<number> {
  return stat(p).then((s) => s.size, () => 0);
}

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
