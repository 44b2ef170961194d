import { errorMessage } from '../util/errors.js';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, mkdir, rm, stat, statfs } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { BUNDLE_FILES, BUNDLE_FORMAT, BUNDLE_VERSION, MAX_BOOT_FILE_BYTES, type BundleFile, type BundleManifest } from '../domain/bundle.js';
import { DomainError, invalid } from '../domain/errors.js';
import { assertCan } from '../domain/vm-state.js';
import type { Snapshot } from '../domain/snapshot.js';
import { parseCloudInitConfig } from '../domain/cloud-init.js';
import { assertValidNetwork, hasControlChar, sshForward, type Vm, type VmNetwork } from '../domain/vm.js';
import type { BundleArchive } from '../ports/bundle-archive.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { SnapshotRepo } from '../ports/repos.js';
import type { DataLayout } from './layout.js';
import { fileExists, resolveAllowedPath, resolveNewFileIn } from './path-guard.js';
import type { VmService } from './vm-service.js';

const MANIFEST = 'manifest.json';
const MAX_MANIFEST_BYTES = 1024 * 1024;
const GiB = 1024 ** 3;

export interface ExportOptions {
  /** Write into `<data>/transfer` instead of streaming; relative to it. */
  path?: string;
  gzip: boolean;
}

export type ExportResult =
  | { kind: 'stream'; stream: Readable; vmName: string; gzip: boolean }
  | { kind: 'file'; path: string; bytes: number };

/**
 * Portable bundles: a tar (optionally gzip'd) whose first entry is a versioned manifest naming every
 * other entry with its size and SHA-256. The disk travels as its qcow2 file, internal snapshots and all.
 */
export class BundleService {
  constructor(private readonly d: {
    vms: VmService; snapshots: SnapshotRepo; disks: DiskStore; layout: DataLayout; archive: BundleArchive; groveVersion: string;
    /** The manifest schema's check: a whole manifest, or VALIDATION_FAILED naming the field. */
    checkManifest: (value: unknown) => BundleManifest;
  }) {}

  /**
   * The VM must be stopped; its operation lock is held until the bundle has been read to the end (or the
   * reader went away), so nothing can start it and change the disk mid-read.
   */
  async export(ref: string, opts: ExportOptions): Promise<ExportResult> {
    const target = opts.path !== undefined ? await resolveNewFileIn(opts.path, this.d.layout.transfer, 'path') : null;
    return new Promise<ExportResult>((resolve, reject) => {
      this.d.vms.exclusive(ref, 'export', async (ctx) => {
        const { vm } = ctx;
        // Its disk must not change while it is read.
        assertCan('export', vm.state, vm.name);
        // Checked again now the VM is ours: an export queued behind one to the same path loses here,
        // before reading a whole disk, rather than at the end.
        if (target !== null && await exists(target)) throw fileExists(opts.path!, this.d.layout.transfer, 'path');
        const disk = await this.portableDisk(vm);
        try {
          const stream = await this.pack(vm, disk.path, opts.gzip);
          if (target === null) {
            resolve({ kind: 'stream', stream, vmName: vm.name, gzip: opts.gzip });
            await finished(stream).catch(() => undefined);
            return;
          }
          const partial = `${target}.partial-${randomUUID().slice(0, 8)}`;
          try {
            await pipeline(stream, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
            // link(2), not rename(2): it fails when the name is taken, so of exports racing to one path
            // (other VMs, other daemons' files) exactly one wins and nothing is replaced.
            await link(partial, target).catch((e: unknown) => {
              throw (e as NodeJS.ErrnoException).code === 'EEXIST' ? fileExists(opts.path!, this.d.layout.transfer, 'path') : e;
            });
          } finally {
            await rm(partial, { force: true });
          }
          resolve({ kind: 'file', path: target, bytes: (await stat(target)).size });
        } finally {
          await disk.done();
        }
      }).catch(reject);
    });
  }

  /**
   * Into `<data>/transfer`: `path` defaults to `<vm>.grove.tar` (`.gz` when compressed). A path ending in
   * `.gz` or `.tgz` is compressed and one ending in `.tar` is not; an explicit `gzip` that contradicts the
   * name is refused rather than obeyed, since either way one of the two would be a lie about the file.
   */
  async exportToTransfer(ref: string, opts: { path?: string; gzip?: boolean }): Promise<{ path: string; bytes: number }> {
    const named = opts.path === undefined ? undefined : /\.(gz|tgz)$/i.test(opts.path) ? true : /\.tar$/i.test(opts.path) ? false : undefined;
    if (named !== undefined && opts.gzip !== undefined && opts.gzip !== named) {
      throw invalid(`path '${opts.path}' names ${named ? 'a gzip file' : 'an uncompressed tar'} but compression '${opts.gzip ? 'gzip' : 'none'}' was asked: `
        + `leave compression out, or name the file ${named ? '.tar' : '.tar.gz'}`, { field: 'compression' });
    }
    const gzip = opts.gzip ?? named ?? false;
    const path = opts.path ?? `${this.d.vms.get(ref).name}.grove.tar${gzip ? '.gz' : ''}`;
    const r = await this.export(ref, { path, gzip });
    if (r.kind !== 'file') throw new Error('an export to a file answered with a stream');
    return { path: r.path, bytes: r.bytes };
  }

  /**
   * The disk as one self-contained qcow2. A clone's disk is a layer over shared bases: it is flattened
   * into a temporary file first. Internal snapshots live in single layers and cannot survive flattening,
   * so a layered disk that has some is refused rather than exported without them.
   */
  private async portableDisk(vm: Vm): Promise<{ path: string; done: () => Promise<void> }> {
    const paths = this.d.layout.vmPaths(vm.id);
    if ((await this.d.disks.backingName(paths.disk)) === null) return { path: paths.disk, done: async () => undefined };
    const snaps = this.d.snapshots.list(vm.id).length;
    if (snaps > 0) {
      throw new DomainError('CONFLICT', `the disk of '${vm.name}' is a layer over a base it shares with clones, and it has ${snaps} snapshot(s): `
        + 'a bundle carries one flattened disk, which cannot keep them. Delete the snapshots, or clone a snapshot-free copy and export that', { snapshots: snaps });
    }
    const flat = this.d.layout.exportTemp(vm.id);
    try {
      await this.d.disks.flatten(paths.disk, flat);
    } catch (e) {
      await rm(flat, { force: true });
      throw e;
    }
    return { path: flat, done: () => rm(flat, { force: true }) };
  }

  private async pack(vm: Vm, disk: string, gzip: boolean): Promise<Readable> {
    const sources: { name: BundleFile; path: string }[] = [{ name: 'disk.qcow2', path: disk }];
    if (vm.boot.kernel) sources.push({ name: 'kernel', path: vm.boot.kernel });
    if (vm.boot.initrd) sources.push({ name: 'initrd', path: vm.boot.initrd });
    const files: BundleManifest['files'] = {};
    for (const s of sources) files[s.name] = await hashFile(s.path);
    // The seed itself is not carried: the imported VM is a new instance and gets its own.
    const cloudInit = this.d.vms.cloudInitConfig(vm.id);
    const manifest: BundleManifest = {
      format: BUNDLE_FORMAT, version: BUNDLE_VERSION, groveVersion: this.d.groveVersion, exportedAt: new Date().toISOString(),
      vm: {
        name: vm.name, cpu: vm.cpu, memoryMB: vm.memoryMB, diskGB: vm.diskGB, ...(vm.boot.cmdline !== undefined ? { cmdline: vm.boot.cmdline } : {}), network: vm.network,
        ...(cloudInit !== null ? { cloudInit } : {}),
      },
      files,
      snapshots: this.d.snapshots.list(vm.id).map((s) => ({ tag: s.tag, name: s.name, description: s.description, kind: s.kind, vmState: s.vmState, diskGB: s.diskGB, createdAt: s.createdAt })),
    };
    const data = Buffer.from(JSON.stringify(manifest, null, 2));
    return this.d.archive.pack([{ name: MANIFEST, size: data.length, data }, ...sources.map((s) => ({ name: s.name, size: files[s.name]!.size, path: s.path }))], gzip);
  }

  async importFromTransfer(userPath: string, name?: string): Promise<Vm> {
    const file = await resolveAllowedPath(userPath, [this.d.layout.transfer], 'path');
    return this.import(createReadStream(file), name);
  }

  /**
   * Unpacks into a private folder, checking every entry against the manifest as it streams (names,
   * types, sizes, SHA-256); only a bundle that passes everything becomes a VM. Nothing is left behind
   * otherwise.
   */
  async import(input: Readable, name?: string): Promise<Vm> {
    const staging = this.d.layout.stagingDir('import', randomUUID());
    await mkdir(staging, { recursive: true, mode: 0o700 });
    try {
      let manifest: BundleManifest | null = null;
      const seen = new Set<string>();
      for await (const entry of this.d.archive.entries(input)) {
        if (entry.type !== 'file') throw invalid(`bundle entry '${entry.name}' is a ${entry.type}; only regular files are accepted`);
        if (seen.has(entry.name)) throw invalid(`bundle entry '${entry.name}' appears twice`);
        seen.add(entry.name);
        if (manifest === null) {
          if (entry.name !== MANIFEST) throw invalid(`a bundle must start with ${MANIFEST} (found '${entry.name}')`);
          if (entry.size > MAX_MANIFEST_BYTES) throw invalid(`${MANIFEST} is larger than ${MAX_MANIFEST_BYTES} bytes`);
          manifest = parseManifest(await readAll(entry.stream, MAX_MANIFEST_BYTES), this.d.checkManifest);
          // Before megabytes are unpacked: the name must be free, and the data folder roomy enough.
          this.d.vms.assertNameFree(name ?? manifest.vm.name);
          await this.assertRoom(manifest);
          continue;
        }
        if (!(BUNDLE_FILES as readonly string[]).includes(entry.name)) throw invalid(`unexpected bundle entry '${entry.name}'`);
        const declared = manifest.files[entry.name as BundleFile];
        if (!declared) throw invalid(`bundle entry '${entry.name}' is not listed in the manifest`);
        if (entry.size !== declared.size) throw invalid(`bundle entry '${entry.name}' is ${entry.size} bytes; the manifest says ${declared.size}`);
        const digest = await writeChecked(entry.stream, join(staging, entry.name), declared.size);
        if (digest !== declared.sha256) throw invalid(`bundle entry '${entry.name}' does not match its SHA-256 in the manifest`);
      }
      if (manifest === null) throw invalid('the bundle is empty');
      for (const f of Object.keys(manifest.files)) if (!seen.has(f)) throw invalid(`the manifest lists '${f}' but the bundle does not hold it`);
      if (!seen.has('disk.qcow2')) throw invalid('the bundle holds no disk.qcow2');
      await this.d.disks.assertStandalone(join(staging, 'disk.qcow2'), 'qcow2');
      const tags = new Set((await this.d.disks.snapshotList(join(staging, 'disk.qcow2'))).map((s) => s.tag));
      const keep = manifest.snapshots.filter((s) => tags.has(s.tag));
      return await this.d.vms.importStaged({
        name: name ?? manifest.vm.name,
        staging,
        spec: { ...manifest.vm, network: this.freeSshForward(manifest.vm) },
        hasKernel: seen.has('kernel'),
        hasInitrd: seen.has('initrd'),
        within: (vm: Vm) => this.insertSnapshots(vm, keep),
        origin: { imported: true },
        cloudInit: manifest.vm.cloudInit ?? null,
      });
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      if (e instanceof DomainError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new DomainError('INSUFFICIENT_STORAGE', 'the data folder ran out of space while unpacking the bundle');
      throw invalid(`not a valid Grove bundle: ${errorMessage(e)}`);
    }
  }

  /**
   * A cloud-init VM's SSH forward was chosen for it by Grove: when another VM here already uses that host
   * port (an export imported on the same host), it is dropped and the import gets a free one instead.
   */
  private freeSshForward(v: BundleManifest['vm']): VmNetwork {
    const fwd = v.cloudInit !== undefined ? sshForward(v.network) : undefined;
    if (!fwd || !this.d.vms.list().some((o) => o.network.portForwards.some((f) => f.host === fwd.host))) return v.network;
    return { ...v.network, portForwards: v.network.portForwards.filter((f) => f !== fwd) };
  }

  private insertSnapshots(vm: Vm, list: BundleManifest['snapshots']): void {
    for (const s of list) {
      const snap: Snapshot = { ...s, diskGB: s.diskGB ?? vm.diskGB, id: randomUUID(), vmId: vm.id };
      this.d.snapshots.insert(snap);
    }
  }

  private async assertRoom(m: BundleManifest): Promise<void> {
    const total = Object.values(m.files).reduce((n, f) => n + (f?.size ?? 0), 0);
    const free = await freeBytes(this.d.layout.vms);
    if (total > free) throw new DomainError('INSUFFICIENT_STORAGE', `the bundle needs ${total} bytes; the data folder has ${free} free`);
  }
}

/**
 * `manifest.json` parsed and checked whole (`check`: the schema, injected by the composition root) before
 * anything is unpacked; then what needs more than a schema: the network's own rules, the cloud-init
 * config, and file sizes bounded by the disk size.
 */
function parseManifest(raw: Buffer, check: (value: unknown) => BundleManifest): BundleManifest {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalid(`${MANIFEST} is not valid JSON`, { field: MANIFEST });
  }
  const m = check(value);
  const v = m.vm;
  assertValidNetwork(v.network);
  if (v.cmdline !== undefined && hasControlChar(v.cmdline)) throw invalid('manifest vm.cmdline must not contain control characters (it goes on QEMU\'s command line)', { field: `${MANIFEST}/vm/cmdline` });
  if (v.cloudInit !== undefined) v.cloudInit = parseCloudInitConfig(v.cloudInit, 'manifest vm.cloudInit');
  // A snapshot taken before the disk shrank back (a restore of an older one) keeps its larger size inside the file.
  const largestGB = Math.max(v.diskGB, ...m.snapshots.map((s) => s.diskGB ?? 0));
  for (const [name, f] of Object.entries(m.files)) {
    const limit = name === 'disk.qcow2' ? largestGB * GiB + GiB : MAX_BOOT_FILE_BYTES;
    if (f.size > limit) throw invalid(`${MANIFEST}/files/${name}/size: ${f.size} is more than a ${name} of this VM can be (${limit})`, { field: `${MANIFEST}/files/${name}/size` });
  }
  return m;
}

async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) { h.update(chunk as Buffer); size += (chunk as Buffer).length; }
  return { size, sha256: h.digest('hex') };
}

async function readAll(s: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > max) throw invalid(`entry larger than ${max} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** Writes at most `limit` bytes (a lying header cannot make it write more) and returns the SHA-256. */
async function writeChecked(s: Readable, file: string, limit: number): Promise<string> {
  const h = createHash('sha256');
  let n = 0;
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  await pipeline(s, async function* (src: AsyncIterable<Buffer>) {
    for await (const c of src) {
      n += c.length;
      if (n > limit) throw invalid(`entry '${basename(file)}' is longer than declared`);
      h.update(c);
      yield c;
    }
  }, out);
  return h.digest('hex');
}

async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}
