import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import type { JobOutputFiles, JobOutputWriter } from '../ports/jobs.js';

export class FsJobOutputFiles implements JobOutputFiles {
  async makeDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  async openWriter(path: string): Promise<JobOutputWriter> {
    const fh: FileHandle = await open(path, 'a', 0o600);
    return {
      append: async (data) => { await fh.write(data); },
      close: () => fh.close(),
    };
  }

  async size(path: string): Promise<number> {
    try {
      return (await stat(path)).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
  }

  async read(path: string, offset: number, limit: number): Promise<Buffer> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
      throw e;
    }
    try {
      const buf = Buffer.allocUnsafe(limit);
      let got = 0;
      while (got < limit) {
        const { bytesRead } = await fh.read(buf, got, limit - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }
}
