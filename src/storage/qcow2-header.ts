import { open } from 'node:fs/promises';

const QCOW2_MAGIC = 0x514649fb;
/** qemu refuses backing names longer than 1023 bytes; anything bigger is not a header qemu wrote. */
const MAX_BACKING_NAME = 1023;
/** qemu's own limit on L1 entries (32 MiB of table). */
const MAX_L1_ENTRIES = 32 * 1024 * 1024 / 8;

/** The virtual disk size recorded in a qcow2 header, in bytes. */
export async function readVirtualSize(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(32);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length || head.readUInt32BE(0) !== QCOW2_MAGIC) throw new Error(`${path} is not a qcow2 image`);
    return Number(head.readBigUInt64BE(24));
  } finally {
    await fh.close();
  }
}

/**
 * The backing file name recorded in a qcow2 header, exactly as written (possibly relative to the
 * image's folder), or null for a standalone image. Read directly (a few bytes) rather than through
 * `qemu-img info`: the disk pool walks every VM's chain when it collects unused layers.
 */
export async function readBackingName(path: string): Promise<string | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(20);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length || head.readUInt32BE(0) !== QCOW2_MAGIC) throw new Error(`${path} is not a qcow2 image`);
    const offset = head.readBigUInt64BE(8);
    const size = head.readUInt32BE(16);
    if (offset === 0n || size === 0) return null;
    if (size > MAX_BACKING_NAME) throw new Error(`${path}: backing file name of ${size} bytes`);
    const name = Buffer.alloc(size);
    const r = await fh.read(name, 0, size, Number(offset));
    if (r.bytesRead !== size) throw new Error(`${path}: truncated backing file name`);
    return name.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Whether the image itself holds any data: a qcow2 whose L1 table names no L2 table has no cluster of its
 * own (every read falls through to its backing) and no internal snapshot. Reads the L1 table only, which
 * is 8 bytes per 512 MiB of virtual disk with 64 KiB clusters.
 */
export async function holdsData(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(72);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length || head.readUInt32BE(0) !== QCOW2_MAGIC) throw new Error(`${path} is not a qcow2 image`);
    const l1Size = head.readUInt32BE(36);
    const l1Offset = head.readBigUInt64BE(40);
    const snapshots = head.readUInt32BE(60);
    if (snapshots > 0) return true;
    if (l1Size > MAX_L1_ENTRIES) throw new Error(`${path}: L1 table of ${l1Size} entries`);
    const l1 = Buffer.alloc(l1Size * 8);
    const r = await fh.read(l1, 0, l1.length, Number(l1Offset));
    if (r.bytesRead !== l1.length) throw new Error(`${path}: truncated L1 table`);
    return l1.some((b) => b !== 0);
  } finally {
    await fh.close();
  }
}
