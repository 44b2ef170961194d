import { open, stat } from 'node:fs/promises';
import type { ConsoleLogReader, VmPaths } from '../ports/hypervisor.js';

/** Reads the serial log QEMU writes; a VM that never ran simply has an empty console. */
export class ConsoleLogFile implements ConsoleLogReader {
  async size(paths: VmPaths): Promise<number> {
    return stat(paths.consoleLog).then((s) => s.size, () => 0);
  }

  async read(paths: VmPaths, from: number, length: number): Promise<Buffer> {
    let fh;
    try {
      fh = await open(paths.consoleLog, 'r');
    } catch {
      return Buffer.alloc(0);
    }
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, from);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}
