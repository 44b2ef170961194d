import { open, readFile, stat } from 'node:fs/promises';

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** A file's size in bytes; a file that does not exist counts as empty. */
export async function sizeOr0(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (isMissing(e)) return 0;
    throw e;
  }
}

/**
 * Up to `maxBytes` bytes of `path` starting at byte `start` (fewer at the end of the file); a file that
 * does not exist reads as empty. Reads only that range, however large the file has grown.
 */
export async function readRange(path: string, start: number, maxBytes: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (isMissing(e)) return Buffer.alloc(0);
    throw e;
  }
  try {
    const buf = Buffer.alloc(Math.max(0, maxBytes));
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A non-negative integer kept as decimal text in `path`; a missing or unreadable file counts as 0. */
export async function readOffsetFile(path: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '0');
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
