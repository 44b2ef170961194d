import type { ConsoleLogReader, VmPaths } from '../ports/hypervisor.js';
import { readRange, sizeOr0 } from '../util/files.js';

/**
 * Console history as one byte sequence: earlier boots (`console.history`) followed by the current boot
 * (`console.out`, written by QEMU). A VM that never ran simply has an empty console.
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
}
