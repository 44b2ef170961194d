import { open, stat } from 'node:fs/promises';
import type { LogFiles } from '../ports/log-files.js';

export class FsLogFiles implements LogFiles {
  async size(file: string): Promise<number> {
    return stat(file).then((s) => s.size, (e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return 0; throw e; });
  }

  async read(file: string, from: number, length: number): Promise<Buffer> {
    const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return null; throw e; });
    if (!fh) return Buffer.alloc(0);
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, from);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}
