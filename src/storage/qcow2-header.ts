import { open, type FileHandle } from 'node:fs/promises';

const QCOW2_MAGIC = 0x514649fb;
/** qemu refuses backing names longer than 1023 bytes; anything bigger is not a header qemu wrote. */
const MAX_BACKING_NAME = 1023;
/** qemu's own limit on L1 entries (32 MiB of table). */
const MAX_L1_ENTRIES = 32 * 1024 * 1024 / 8;

/**
 * Facts read straight from a qcow2 header (a few bytes) rather than through `qemu-img info`, which starts
 * a process: the disk pool walks every VM's chain when it collects unused layers, and a clone asks them
 * on its fast path.
 */
async function withHeader<T>(path: string, bytes: number, fn: (head: Buffer, fh: FileHandle) => Promise<T>): Promise<T> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(head, 0, bytes, 0);
    if (bytesRead < bytes || head.readUInt32BE(0) !== QCOW2_MAGIC) throw new Error(`${path} is not a qcow2 image`);
    return await fn(head, fh);
  } finally {
    await fh.close();
  }
}

/**
 * The backing file name recorded in a qcow2 header, exactly as written (possibly relative to the
 * image's folder), or null for a standalone image.
 */
export function readBackingName(path: string): Promise<string | null> {
  return withHeader(path, 20, async (head, fh) => {
    const offset = head.readBigUInt64BE(8);
    const size = head.readUInt32BE(16);
    if (offset === 0n || size === 0) return null;
    if (size > MAX_BACKING_NAME) throw new Error(`${path}: backing file name of ${size} bytes`);
    const name = Buffer.alloc(size);
    const r = await fh.read(name, 0, size, Number(offset));
    if (r.bytesRead !== size) throw new Error(`${path}: truncated backing file name`);
    return name.toString('utf8');
  });
}

/**
 * A layer's virtual size, and whether it holds any data of its own: a qcow2 whose L1 table names no L2
 * table has no cluster (every read falls through to its backing) — unless it has internal snapshots. The
 * L1 table is 8 bytes per 512 MiB of virtual disk with 64 KiB clusters.
 */
export function readLayerFacts(path: string): Promise<{ virtualSize: number; holdsData: boolean }> {
  return withHeader(path, 72, async (head, fh) => {
    const virtualSize = Number(head.readBigUInt64BE(24));
    const l1Size = head.readUInt32BE(36);
    const l1Offset = head.readBigUInt64BE(40);
    if (head.readUInt32BE(60) > 0) return { virtualSize, holdsData: true }; // internal snapshots
    if (l1Size > MAX_L1_ENTRIES) throw new Error(`${path}: L1 table of ${l1Size} entries`);
    const l1 = Buffer.alloc(l1Size * 8);
    const r = await fh.read(l1, 0, l1.length, Number(l1Offset));
    if (r.bytesRead !== l1.length) throw new Error(`${path}: truncated L1 table`);
    return { virtualSize, holdsData: l1.some((b) => b !== 0) };
  });
}
