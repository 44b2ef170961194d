import { randomUUID } from 'node:crypto';
import { chmod, constants as fsc, copyFile, link, lstat, mkdir, readdir, realpath, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import type { DiskStore } from '../ports/disk-store.js';
import type { DataLayout } from './layout.js';
import type { Logger } from './vm-service.js';

const LAYER_FILE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.qcow2$/;
/** Far beyond any chain clones build; a loop in hand-edited headers must not hang the collector. */
const MAX_CHAIN = 256;

/**
 * The disk layer pool (`<data>/disks`). A VM's `vms/<id>/disk.qcow2` is a symlink to its top layer; a
 * layer's qcow2 header names its backing by a name relative to the pool, so the data directory can move.
 *
 * The files are the only record: which layers are needed is read from the VM folders' links and the
 * headers they lead to, so there is no table that could disagree with the disk. Layers being made and
 * not linked yet are pinned, so a collection running meanwhile leaves them alone.
 */
export class DiskPool {
  private readonly pins = new Map<string, number>();
  private collecting: Promise<string[]> | null = null;
  private reflink: Promise<boolean> | null = null;

  constructor(private readonly d: { layout: DataLayout; disks: DiskStore; log: Logger }) {}

  /** A path for a new layer; pinned until `release` is called. */
  reserve(): { path: string; release: () => void } {
    const path = join(this.d.layout.disks, `${randomUUID()}.qcow2`);
    return { path, release: this.pin(path) };
  }

  /** The VM's top layer (following its link), or its disk file when it is not in the pool yet. */
  async top(vmId: string): Promise<{ path: string; pooled: boolean }> {
    const disk = this.d.layout.vmPaths(vmId).disk;
    const st = await lstat(disk);
    return st.isSymbolicLink() ? { path: await realpath(disk), pooled: true } : { path: disk, pooled: false };
  }

  /**
   * Moves a VM's disk into the pool; the VM's QEMU must not be running (QEMU reopens files by name). A
   * hard link first, then the link swapped in by rename: at no moment is the data without a name.
   */
  async adopt(vmId: string): Promise<string> {
    const disk = this.d.layout.vmPaths(vmId).disk;
    if ((await lstat(disk)).isSymbolicLink()) return realpath(disk);
    const layer = this.reserve();
    try {
      await mkdir(this.d.layout.disks, { recursive: true, mode: 0o700 });
      await link(disk, layer.path);
      await this.point(disk, layer.path);
      return layer.path;
    } finally {
      layer.release();
    }
  }

  /** Points a VM's disk link at `layer`, atomically (a new link renamed over the old one). */
  async point(diskLink: string, layer: string): Promise<void> {
    const tmp = `${diskLink}.${randomUUID().slice(0, 8)}.link`;
    await symlink(relative(dirname(diskLink), layer), tmp);
    try {
      await rename(tmp, diskLink);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** Name for `layer` as a backing file in a header written next to it in the pool. */
  backingName(layer: string): string {
    return relative(this.d.layout.disks, layer);
  }

  /** The files a chain consists of, top first. */
  async chain(top: string): Promise<string[]> {
    const files = [top];
    let cur = top;
    for (let i = 0; i < MAX_CHAIN; i++) {
      const name = await this.d.disks.backingName(cur);
      if (name === null) return files;
      cur = resolve(dirname(cur), name);
      files.push(cur);
    }
    throw new Error(`the backing chain of ${top} is longer than ${MAX_CHAIN} layers`);
  }

  /**
   * A copy of `source` that shares its blocks where the filesystem can reflink (FICLONE), a plain copy
   * elsewhere. Mode 0600 whatever the source's (bases are read-only).
   */
  async copyLayer(source: string, target: string): Promise<void> {
    await copyFile(source, target, fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE);
    await chmod(target, 0o600);
  }

  /** Whether the pool's filesystem shares blocks on copy (probed once with a forced reflink). */
  canReflink(): Promise<boolean> {
    this.reflink ??= (async () => {
      await mkdir(this.d.layout.disks, { recursive: true, mode: 0o700 });
      const a = join(this.d.layout.disks, `.reflink-probe-${randomUUID()}`);
      try {
        await writeFile(a, 'probe');
        await copyFile(a, `${a}.b`, fsc.COPYFILE_FICLONE_FORCE);
        return true;
      } catch {
        return false;
      } finally {
        await Promise.all([rm(a, { force: true }), rm(`${a}.b`, { force: true })]);
      }
    })();
    return this.reflink;
  }

  /**
   * Deletes the layers no VM folder reaches any more (a deleted VM's top, bases its clones no longer
   * share). Anything unreadable stops the collection: a layer is removed only when provably unused.
   */
  collect(): Promise<string[]> {
    // One collection at a time; a request arriving meanwhile gets a fresh one after it.
    const run = async (): Promise<string[]> => {
      const keep = new Set<string>();
      const pool = await realpath(this.d.layout.disks).catch(() => null);
      if (pool === null) return [];
      for (const entry of await readdir(this.d.layout.vms, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        let top: string;
        try {
          top = await realpath(join(this.d.layout.vms, entry.name, 'disk.qcow2'));
        } catch {
          continue; // no disk (yet, or any more)
        }
        for (const f of await this.chain(top)) keep.add(f);
      }
      const removed: string[] = [];
      for (const name of await readdir(pool)) {
        const file = join(pool, name);
        if (!LAYER_FILE.test(name) || keep.has(file) || this.pins.has(join(this.d.layout.disks, name)) || this.pins.has(file)) continue;
        await rm(file, { force: true });
        removed.push(file);
      }
      if (removed.length > 0) this.d.log.info({ removed: removed.length }, 'unused disk layers removed');
      return removed;
    };
    const prev = this.collecting ?? Promise.resolve([]);
    const next: Promise<string[]> = prev.catch(() => []).then(run);
    this.collecting = next;
    void next.finally(() => { if (this.collecting === next) this.collecting = null; }).catch(() => undefined);
    return next;
  }

  private pin(path: string): () => void {
    this.pins.set(path, (this.pins.get(path) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(path) ?? 1) - 1;
      if (n <= 0) this.pins.delete(path); else this.pins.set(path, n);
    };
  }
}
