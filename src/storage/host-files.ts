import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError } from '../domain/errors.js';
import type { HostFiles } from '../ports/host-files.js';

export class FsHostFiles implements HostFiles {
  read(path: string): Readable {
    return createReadStream(path);
  }

  async create(path: string, data: AsyncIterable<Buffer>): Promise<number> {
    let bytes = 0;
    const count = new Transform({ transform(chunk: Buffer, _enc, cb) { bytes += chunk.length; cb(null, chunk); } });
    try {
      await pipeline(data, count, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
    } catch (e) {
      // 'wx' failing means someone else created it meanwhile: theirs, not ours to remove.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new DomainError('FILE_EXISTS', `'${path}' already exists; an existing file is never replaced`, { field: 'localPath' });
      await rm(path, { force: true });
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new DomainError('INSUFFICIENT_STORAGE', `no space left for '${path}' on the host`);
      throw e;
    }
    return bytes;
  }
}
