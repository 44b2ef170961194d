import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ImageFiles, PartWriter } from '../ports/downloads.js';

/** Reads go in large chunks: rehashing a partial file of several GiB is bound by the hash, not by syscalls. */
const READ_CHUNK = 1024 * 1024;
/**
 * A partial file is flushed to the disk in the background every this many bytes, while the download goes
 * on: the fsync before the rename then has little left to write (a 256 MiB image flushed only at the end
 * costs the download a tenth of a second or more, waiting).
 */
const SYNC_EVERY = 32 * 1024 * 1024;

/** The files of images/: partial downloads written in order, verified images renamed into place. */
export class FsImageFiles implements ImageFiles {
  async size(path: string): Promise<number | null> {
    try {
      const st = await stat(path);
      return st.isFile() ? st.size : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async read(path: string, onChunk: (chunk: Buffer) => void): Promise<number> {
    let n = 0;
    for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
      onChunk(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    return n;
  }

  async openPart(path: string, mode: 'append' | 'truncate'): Promise<PartWriter> {
    // Private until verified: nobody else should read (or boot) a file that may still change.
    const fh = await open(path, mode === 'append' ? 'a' : 'w', 0o600);
    let unsynced = 0;
    let syncing: Promise<void> | null = null;
    return {
      async write(chunks) {
        // writev may write less than asked (a full disk mid-way surfaces on the next call as ENOSPC).
        let rest = chunks;
        while (rest.length > 0) {
          const { bytesWritten } = await fh.writev(rest);
          rest = skip(rest, bytesWritten);
          unsynced += bytesWritten;
        }
        if (unsynced >= SYNC_EVERY && syncing === null) {
          unsynced = 0;
          // Not awaited: durability is only needed at the end (promote), this makes it cheap there.
          syncing = fh.datasync().catch(() => undefined).finally(() => { syncing = null; });
        }
      },
      async close() {
        await syncing;
        await fh.close();
      },
    };
  }

  async promote(from: string, to: string): Promise<void> {
    const fh = await open(from, 'r+');
    try {
      await fh.sync();
      await fh.chmod(0o644);
    } finally {
      await fh.close();
    }
    await rename(from, to);
    // The rename itself is durable only once the folder is synced.
    const dir = await open(dirname(to), 'r');
    try { await dir.sync(); } finally { await dir.close(); }
  }

  async remove(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  async freeBytes(path: string): Promise<number> {
    const fs = await statfs(dirname(path));
    return fs.bavail * fs.bsize;
  }
}

/** The chunks left after the first `n` bytes. */
function skip(chunks: Buffer[], n: number): Buffer[] {
  let left = n;
  let i = 0;
  while (i < chunks.length && left >= chunks[i]!.length) left -= chunks[i++]!.length;
  if (i >= chunks.length) return [];
  return left > 0 ? [chunks[i]!.subarray(left), ...chunks.slice(i + 1)] : chunks.slice(i);
}
