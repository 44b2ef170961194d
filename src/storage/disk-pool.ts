import { errorMessage } from '../util/errors.js';
import { randomUUID } from 'node:crypto';
import { chmod, constants as fsc, copyFile, link, lstat, mkdir, readdir, realpath, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DomainError } from '../domain/errors.js';
import type { DiskPool, ImageSource, PinnedLayer } from '../ports/disk-pool.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { Logger } from '../ports/logger.js';
import { run } from '../util/run.js';

/** Where the pool and the VM folders are: real paths (see below). */
export interface PoolPlaces {
  /** The folder holding one folder per VM. */
  vms: string;
  /** The pool itself. */
  disks: string;
  /** A VM's disk link (`<vms>/<id>/disk.qcow2`). */
  diskOf(vmId: string): string;
}


/** A VM's layer (a UUID), or the base of a distro image (named by the image's digest). */
const LAYER_FILE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|image-sha256-[0-9a-f]{64}|image-sha512-[0-9a-f]{128})\.qcow2$/;
/** Far beyond any chain clones build; a loop in hand-edited headers must not hang the collector. */
const MAX_CHAIN = 256;
const COPY_MS = 60 * 60_000;

/**
 * The disk layer pool (`<data>/disks`, flat). A VM's `vms/<id>/disk.qcow2` is a symlink to its top layer
 * (`../../disks/<file>`); a layer's qcow2 header names its backing by bare file name, so the data
 * directory can move as a whole. The data directory's path must be its real path (the daemon resolves it
 * once): qemu resolves backing names against the name it was given.
 *
 * The files are the only record: which layers are needed is read from the VM folders' links and the
 * headers they lead to, so there is no table that could disagree with the disk. Layers being made and not
 * linked yet are pinned; a collection also spares every layer pinned at any moment while it ran, since a
 * link made after it read that VM's folder is invisible to it.
 */
export class FileDiskPool implements DiskPool {
  private readonly pins = new Map<string, number>();
  /** Layers pinned at any time during the running collection (null when none runs). */
  private pinnedDuringCollection: Set<string> | null = null;
  private collecting: Promise<string[]> | null = null;
  private reflink: Promise<boolean> | null = null;

  constructor(private readonly d: { places: PoolPlaces; disks: DiskStore; log: Logger }) {}

  /** A path for a new layer; pinned until `release` is called. */
  reserve(): PinnedLayer {
    const path = join(this.d.places.disks, `${randomUUID()}.qcow2`);
    return { path, release: this.pin(path) };
  }

  async imageBase(image: ImageSource): Promise<PinnedLayer> {
    if (!/^[0-9a-f]+$/.test(image.digest) || image.digest.length !== (image.algorithm === 'sha256' ? 64 : 128)) {
      throw new Error(`not a ${image.algorithm} digest: ${image.digest}`);
    }
    const path = join(this.d.places.disks, `image-${image.algorithm}-${image.digest}.qcow2`);
    const release = this.pin(path);
    try {
      if (!(await exists(path))) await this.makeBase(image, path);
      return { path, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * Made under a reserved (collectable) name and renamed into place, so a crash leaves no half-made base
   * under the image's name. Another VM racing to make the same base renames the same content over it.
   */
  private async makeBase(image: ImageSource, path: string): Promise<void> {
    const tmp = this.reserve();
    try {
      await mkdir(this.d.places.disks, { recursive: true, mode: 0o700 });
      if (image.format === 'qcow2') {
        // Verified against its digest, but a qcow2 header could still name other host files.
        await this.d.disks.assertStandalone(image.path, 'qcow2');
        await link(image.path, tmp.path).catch(async (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EXDEV') throw e;
          await this.copyLayer(image.path, tmp.path);
        });
      } else {
        // A raw image becomes a qcow2 base once (the chain is read from qcow2 headers): O(image) here only.
        await this.d.disks.createFrom(tmp.path, image.path, 'raw', 0);
      }
      await this.freeze(tmp.path);
      await rename(tmp.path, path);
    } catch (e) {
      await rm(tmp.path, { force: true });
      throw e;
    } finally {
      tmp.release();
    }
  }

  /** The VM's top layer (following its link), or its disk file when it is not in the pool yet. */
  async top(vmId: string): Promise<{ path: string; pooled: boolean }> {
    const disk = this.d.places.diskOf(vmId);
    const st = await lstat(disk);
    return st.isSymbolicLink() ? { path: await realpath(disk), pooled: true } : { path: disk, pooled: false };
  }

  /** Whether `file` is a layer of this pool. */
  holds(file: string): boolean {
    return dirname(file) === this.d.places.disks && LAYER_FILE.test(basename(file));
  }

  /**
   * Moves a VM's disk into the pool; the VM's QEMU must not be running (QEMU reopens files by name). A
   * hard link first, then the link swapped in by rename: at no moment is the data without a name.
   */
  async adopt(vmId: string): Promise<string> {
    const disk = this.d.places.diskOf(vmId);
    if ((await lstat(disk)).isSymbolicLink()) return realpath(disk);
    const layer = this.reserve();
    try {
      await mkdir(this.d.places.disks, { recursive: true, mode: 0o700 });
      await link(disk, layer.path);
      await this.point(disk, layer.path);
      return layer.path;
    } finally {
      layer.release();
    }
  }

  /** Points a VM folder's disk link at `layer`, atomically (a new link renamed over the old one). */
  async point(diskLink: string, layer: string): Promise<void> {
    if (!this.holds(layer) || dirname(dirname(diskLink)) !== this.d.places.vms) {
      throw new Error(`refusing to link ${diskLink} to ${layer}: not a VM folder's disk and a pool layer`);
    }
    const tmp = `${diskLink}.${randomUUID().slice(0, 8)}.link`;
    await symlink(join('..', '..', basename(this.d.places.disks), basename(layer)), tmp);
    try {
      await rename(tmp, diskLink);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** Name for `layer` as a backing file in a header written next to it in the (flat) pool. */
  backingName(layer: string): string {
    if (!this.holds(layer)) throw new Error(`${layer} is not a layer of the pool`);
    return basename(layer);
  }

  /** The files a chain consists of, top first; every one must be a layer of the pool. */
  async chain(top: string): Promise<string[]> {
    const files = [top];
    let cur = top;
    for (let i = 0; i < MAX_CHAIN; i++) {
      const name = await this.d.disks.backingName(cur);
      if (name === null) return files;
      cur = await realpath(resolve(dirname(cur), name));
      if (!this.holds(cur)) throw new Error(`${files.at(-1)} names a backing file outside the pool: ${name}`);
      files.push(cur);
    }
    throw new Error(`the backing chain of ${top} is longer than ${MAX_CHAIN} layers`);
  }

  async freeze(layer: string): Promise<void> {
    // Shared from now on: nothing may write to it (QEMU opens backing files read-only anyway).
    await chmod(layer, 0o444);
  }

  /**
   * A copy of `source` that shares its blocks where the filesystem can reflink, and keeps its holes
   * elsewhere (a guest's discards leave holes in a layer). Mode 0600 whatever the source's (bases are
   * read-only).
   */
  async copyLayer(source: string, target: string): Promise<void> {
    let r;
    try {
      r = await run('cp', ['--reflink=auto', '--sparse=always', '--no-preserve=mode', '--', source, target], COPY_MS);
    } catch (e) {
      throw new DomainError('INTERNAL', `cannot run cp: ${errorMessage(e)}`);
    }
    if (r.code !== 0) {
      await rm(target, { force: true });
      const detail = r.stderr.trim() || `exit ${r.code}`;
      throw new DomainError(/No space left/i.test(detail) ? 'INSUFFICIENT_STORAGE' : 'INTERNAL', `copying the disk layer failed: ${detail}`);
    }
    await chmod(target, 0o600);
  }

  /** Whether the pool's filesystem shares blocks on copy (probed once with a forced reflink). */
  canReflink(): Promise<boolean> {
    this.reflink ??= (async () => {
      await mkdir(this.d.places.disks, { recursive: true, mode: 0o700 });
      const a = join(this.d.places.disks, `.reflink-probe-${randomUUID()}`);
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
   * share). Anything it cannot read — a link whose layer is missing, a header it cannot parse, a backing
   * name outside the pool — stops the collection: a layer is removed only when provably unused.
   */
  collect(): Promise<string[]> {
    const prev = this.collecting ?? Promise.resolve([]);
    const next: Promise<string[]> = prev.catch(() => []).then(() => this.collectNow());
    this.collecting = next;
    void next.finally(() => { if (this.collecting === next) this.collecting = null; }).catch(() => undefined);
    return next;
  }

  private async collectNow(): Promise<string[]> {
    this.pinnedDuringCollection = new Set(this.pins.keys());
    try {
      const keep = new Set<string>();
      for (const entry of await readdir(this.d.places.vms, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const disk = join(this.d.places.vms, entry.name, 'disk.qcow2');
        const st = await lstat(disk).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return null; throw e; });
        // A plain file is a disk not in the pool yet (or one being imported): it names no layer, and
        // its header is not ours to trust.
        if (st === null || !st.isSymbolicLink()) continue;
        for (const f of await this.chain(await realpath(disk))) keep.add(basename(f));
      }
      const removed: string[] = [];
      for (const name of await readdir(this.d.places.disks)) {
        if (!LAYER_FILE.test(name) || keep.has(name) || this.pins.has(name) || this.pinnedDuringCollection.has(name)) continue;
        const file = join(this.d.places.disks, name);
        await rm(file, { force: true });
        removed.push(file);
      }
      if (removed.length > 0) this.d.log.info({ removed: removed.length }, 'unused disk layers removed');
      return removed;
    } finally {
      this.pinnedDuringCollection = null;
    }
  }

  private pin(path: string): () => void {
    const name = basename(path);
    this.pins.set(name, (this.pins.get(name) ?? 0) + 1);
    this.pinnedDuringCollection?.add(name);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(name) ?? 1) - 1;
      if (n <= 0) this.pins.delete(name); else this.pins.set(name, n);
    };
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, (e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return false; throw e; });
}
