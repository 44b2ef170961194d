import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { CloudInitConfig, CloudInitInput } from '../../domain/cloud-init.js';
import { invalid } from '../../domain/errors.js';
import { assertCan, isLive } from '../../domain/vm-state.js';
import { assertValidName, resolveNetwork, type Vm, type VmBoot, type VmNetwork, type VmNetworkInput } from '../../domain/vm.js';
import type { DiskPool } from '../../ports/disk-pool.js';
import type { DiskStore } from '../../ports/disk-store.js';
import type { Logger } from '../../ports/logger.js';
import type { VmErrorRecord, VmErrorRepo, VmRepo } from '../../ports/repos.js';
import type { VmFiles } from '../../ports/vm-files.js';
import { errorMessage } from '../../util/errors.js';
import type { CloudInitService, Provisioned } from '../cloud-init-service.js';
import type { DataLayout } from '../layout.js';
import type { OperationLocks } from '../operation-lock.js';
import { resolveAllowedPath } from '../path-guard.js';
import type { VmLifecycle } from './vm-lifecycle.js';
import type { VmProvisioner } from './vm-provisioner.js';
import { isNameClash, nameConflict, type VmRecords } from './vm-records.js';

export interface CreateVmInput {
  name: string;
  cpu?: number;
  memoryMB?: number;
  diskGB?: number;
  distro?: string;
  image?: string;
  imageFormat?: 'qcow2' | 'raw';
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  iso?: string;
  network?: VmNetworkInput;
  cloudInit?: CloudInitInput;
  autostart?: boolean;
}

export interface UpdateVmInput {
  name?: string;
  cpu?: number;
  memoryMB?: number;
  network?: VmNetworkInput;
  autostart?: boolean;
}

export interface ImportStagedInput {
  name: string;
  staging: string;
  /** `distro`: the catalog image the source VM was made from (a clone keeps it). */
  spec: { cpu: number; memoryMB: number; diskGB: number; cmdline?: string; network: VmNetwork; distro?: string | null };
  hasKernel: boolean;
  hasInitrd: boolean;
  within: (vm: Vm) => void;
  /** Where the VM came from, for its `vm.created` event. */
  origin: Record<string, unknown>;
  /** A new instance of this cloud-init config: its own seed (instance-id, hostname) is written. */
  cloudInit?: CloudInitConfig | null;
  /** `suspended`: the staging folder holds a saved state (a live fork's child), so the first start resumes it. */
  state?: 'stopped' | 'suspended';
}

export const DEFAULTS = { cpu: 1, memoryMB: 512, diskGB: 8 } as const;

export interface CatalogDeps {
  records: VmRecords;
  vms: VmRepo;
  errors: VmErrorRepo;
  locks: OperationLocks;
  lifecycle: VmLifecycle;
  provisioner: VmProvisioner;
  disks: DiskStore;
  pool: DiskPool;
  files: VmFiles;
  layout: DataLayout;
  cloudInit: CloudInitService;
  log: Logger;
}

/**
 * The definition controller (Firecracker's pre-boot half): what VMs exist and how they are made — create,
 * import, update, delete, reorder — and the queries about them.
 */
export class VmCatalog {
  constructor(private readonly d: CatalogDeps) {}

  // ---- queries -------------------------------------------------------------------------------

  list(): readonly Vm[] {
    return this.d.vms.list();
  }

  get(ref: string): Vm {
    return this.d.records.get(ref);
  }

  nameTaken(name: string): boolean {
    return this.d.vms.findByName(name) !== undefined;
  }

  /** A valid name no other VM has (`exceptId`: the VM being renamed). */
  assertNameFree(name: string, exceptId?: string): void {
    assertValidName(name);
    const other = this.d.vms.findByName(name);
    if (other && other.id !== exceptId) throw nameConflict(name);
  }

  errors(ref: string, limit = 50): VmErrorRecord[] {
    return this.d.errors.list(this.get(ref).id, limit);
  }

  /** What a VM's cloud-init seed is written from (clones and exports carry it), or null. */
  cloudInitConfig(id: string): CloudInitConfig | null {
    return this.d.vms.cloudInit(id)?.config ?? null;
  }

  // ---- definition ----------------------------------------------------------------------------

  async create(input: CreateVmInput): Promise<Vm> {
    this.assertNameFree(input.name);
    assertBootable(input);
    if (input.distro !== undefined) return this.createFromDistro({ ...input, distro: input.distro });
    if ((input.initrd !== undefined || input.cmdline !== undefined) && input.kernel === undefined) {
      throw invalid(`'initrd' and 'cmdline' need 'kernel'`, { field: input.initrd !== undefined ? 'initrd' : 'cmdline' });
    }
    const network = resolveNetwork(input.network);
    const cloudConfig = input.cloudInit !== undefined ? this.d.cloudInit.prepare(input.cloudInit) : null;

    const roots = [this.d.layout.images, this.d.layout.transfer];
    const resolved = {
      image: input.image !== undefined ? await resolveAllowedPath(input.image, roots, 'image') : undefined,
      kernel: input.kernel !== undefined ? await resolveAllowedPath(input.kernel, roots, 'kernel') : undefined,
      initrd: input.initrd !== undefined ? await resolveAllowedPath(input.initrd, roots, 'initrd') : undefined,
      iso: input.iso !== undefined ? await resolveAllowedPath(input.iso, roots, 'iso') : undefined,
    };
    for (const [field, path] of Object.entries(resolved)) {
      // A distro image still downloading (or never verified) is not an image.
      if (path?.endsWith('.part')) throw invalid(`${field} '${input[field as keyof typeof resolved]}' is an unfinished download, not a verified image`, { field });
    }

    const id = randomUUID();
    const paths = this.d.layout.vmPaths(id);
    const now = new Date().toISOString();
    await this.d.files.makeDir(paths.dir);
    let release = (): void => undefined;
    try {
      // The VM keeps its own copies (reflinked where the filesystem can), so it does not break when
      // the originals change and an export carries everything it needs.
      const boot: VmBoot = {};
      if (resolved.kernel) { boot.kernel = join(paths.dir, 'kernel'); await this.d.files.copyIn(resolved.kernel, boot.kernel); }
      if (resolved.initrd) { boot.initrd = join(paths.dir, 'initrd'); await this.d.files.copyIn(resolved.initrd, boot.initrd); }
      if (input.cmdline !== undefined) boot.cmdline = input.cmdline;
      if (resolved.iso) boot.iso = resolved.iso;
      let diskGB = input.diskGB ?? DEFAULTS.diskGB;
      if (resolved.image) {
        await this.d.disks.createFrom(paths.disk, resolved.image, input.imageFormat ?? 'qcow2', diskGB);
        // An image larger than asked is kept whole: record the size the disk really has.
        diskGB = Math.max(diskGB, Math.ceil((await this.d.disks.layerFacts(paths.disk)).virtualSize / 1024 ** 3));
      } else {
        await this.d.disks.create(paths.disk, diskGB);
      }
      await this.d.pool.adopt(id);
      const seeded = cloudConfig !== null ? await this.d.cloudInit.provision(paths.dir, { id, name: input.name }, cloudConfig, network) : null;
      if (seeded) release = () => seeded.release();

      const vm: Vm = {
        id, name: input.name, state: 'stopped', cpu: input.cpu ?? DEFAULTS.cpu, memoryMB: input.memoryMB ?? DEFAULTS.memoryMB,
        diskGB, distro: input.distro ?? null, boot, network: seeded?.network ?? network, order: this.d.vms.nextOrder(), createdAt: now, updatedAt: now,
        startedAt: null, accelerator: null, lastError: null, cloudInit: seeded?.summary ?? null, autostart: input.autostart ?? false,
      };
      this.d.records.transact(() => {
        this.d.vms.insert(vm, seeded?.record ?? null);
        this.d.records.emit('vm.created', vm, { vm });
      });
      return vm;
    } catch (e) {
      await this.d.files.removeDir(paths.dir);
      throw isNameClash(e) ? nameConflict(input.name) : e;
    } finally {
      release();
    }
  }

  /**
   * A VM from a catalog distro: always with a cloud-init seed (Grove's key, the default user, the guest
   * agent) and an SSH forward. With the image local it is made at once (stopped); otherwise it is recorded
   * as `provisioning` and the provisioner finishes it when the download it starts or joins completes.
   */
  private async createFromDistro(input: CreateVmInput & { distro: string }): Promise<Vm> {
    const { provisioner } = this.d;
    const distro = provisioner.images.distro(input.distro);
    const network = resolveNetwork(input.network);
    const cloudConfig = this.d.cloudInit.prepare(input.cloudInit ?? {});
    const id = randomUUID();
    const paths = this.d.layout.vmPaths(id);
    const now = new Date().toISOString();
    await this.d.files.makeDir(paths.dir);
    let release = (): void => undefined;
    try {
      const local = await provisioner.images.verifiedLocal(distro.id);
      let diskGB = input.diskGB ?? DEFAULTS.diskGB;
      if (local) diskGB = await provisioner.makeDisk(id, local, diskGB);
      const seeded = await this.d.cloudInit.provision(paths.dir, { id, name: input.name }, cloudConfig, network);
      release = () => seeded.release();
      const vm: Vm = {
        id, name: input.name, state: local ? 'stopped' : 'provisioning', cpu: input.cpu ?? DEFAULTS.cpu, memoryMB: input.memoryMB ?? DEFAULTS.memoryMB,
        diskGB, distro: distro.id, boot: {}, network: seeded.network, order: this.d.vms.nextOrder(), createdAt: now, updatedAt: now,
        startedAt: null, accelerator: null, lastError: null, cloudInit: seeded.summary, autostart: input.autostart ?? false,
      };
      this.d.records.transact(() => {
        this.d.vms.insert(vm, seeded.record);
        this.d.records.emit('vm.created', vm, { vm, image: local ? 'local' : 'downloading' });
      });
      if (!local) provisioner.begin(vm);
      return vm;
    } catch (e) {
      await this.d.files.removeDir(paths.dir);
      // A top layer made for it is unreachable now.
      void this.d.pool.collect().catch(() => undefined);
      throw isNameClash(e) ? nameConflict(input.name) : e;
    } finally {
      release();
    }
  }

  /**
   * Turns a folder already holding a checked disk (and kernel/initrd) into a new VM: the folder is moved
   * into place, and the record, `within` (e.g. snapshot metadata) and the event share one transaction.
   */
  async importStaged(input: ImportStagedInput): Promise<Vm> {
    this.assertNameFree(input.name);
    const id = randomUUID();
    const dir = this.d.layout.vmDir(id);
    const seeded = input.cloudInit ? await this.d.cloudInit.provision(input.staging, { id, name: input.name }, input.cloudInit, input.spec.network) : null;
    try {
      return await this.recordStaged(id, dir, input, seeded);
    } finally {
      seeded?.release();
    }
  }

  private async recordStaged(id: string, dir: string, input: ImportStagedInput, seeded: Provisioned | null): Promise<Vm> {
    await this.d.files.moveDir(input.staging, dir);
    await this.d.pool.adopt(id).catch(async (e: unknown) => {
      await this.d.files.removeDir(dir);
      throw e;
    });
    const now = new Date().toISOString();
    const boot: VmBoot = {};
    if (input.hasKernel) boot.kernel = join(dir, 'kernel');
    if (input.hasInitrd) boot.initrd = join(dir, 'initrd');
    if (input.spec.cmdline !== undefined && input.hasKernel) boot.cmdline = input.spec.cmdline;
    const vm: Vm = {
      id, name: input.name, state: input.state ?? 'stopped', cpu: input.spec.cpu, memoryMB: input.spec.memoryMB, diskGB: input.spec.diskGB, distro: input.spec.distro ?? null,
      boot, network: seeded?.network ?? input.spec.network, order: this.d.vms.nextOrder(), createdAt: now, updatedAt: now, startedAt: null, accelerator: null,
      // A copy (clone, import, fork) never autostarts on its own: it would start beside its source.
      lastError: null, cloudInit: seeded?.summary ?? null, autostart: false,
    };
    try {
      this.d.records.transact(() => {
        this.d.vms.insert(vm, seeded?.record ?? null);
        input.within(vm);
        this.d.records.emit('vm.created', vm, { vm, ...input.origin });
      });
    } catch (e) {
      await this.d.files.removeDir(dir);
      // Taken meanwhile (the name was checked before the disk work began).
      throw isNameClash(e) ? nameConflict(input.name) : e;
    }
    return vm;
  }

  async update(ref: string, patch: UpdateVmInput): Promise<Vm> {
    const { id } = this.get(ref);
    return this.d.locks.run(id, 'update', async () => {
      const vm = this.get(id);
      const next: Vm = { ...vm };
      const changes: string[] = [];
      if (patch.name !== undefined && patch.name !== vm.name) {
        this.assertNameFree(patch.name, vm.id);
        next.name = patch.name;
        changes.push('name');
      }
      if (patch.autostart !== undefined && patch.autostart !== vm.autostart) {
        next.autostart = patch.autostart;
        changes.push('autostart');
      }
      const hw: (keyof UpdateVmInput)[] = [];
      if (patch.cpu !== undefined && patch.cpu !== vm.cpu) { next.cpu = patch.cpu; hw.push('cpu'); }
      if (patch.memoryMB !== undefined && patch.memoryMB !== vm.memoryMB) { next.memoryMB = patch.memoryMB; hw.push('memoryMB'); }
      if (patch.network !== undefined) {
        const network = resolveNetwork(patch.network, vm.network);
        if (JSON.stringify(network) !== JSON.stringify(vm.network)) { next.network = network; hw.push('network'); }
      }
      if (hw.length > 0) assertCan('updateHardware', vm.state, vm.name);
      changes.push(...hw);
      if (changes.length === 0) return vm;
      next.updatedAt = new Date().toISOString();
      this.d.records.transact(() => {
        this.d.vms.update(next);
        this.d.records.emit('vm.updated', next, { changes });
      });
      return next;
    });
  }

  async delete(ref: string, force: boolean): Promise<void> {
    const { lifecycle } = this.d;
    const { id } = this.get(ref);
    if (force && lifecycle.hasQemu(id)) await lifecycle.forceStop(id).catch(() => undefined);
    await this.d.locks.run(id, 'delete', async () => {
      const vm = this.get(id);
      if (force && isLive(vm.state)) {
        await lifecycle.killNow(vm);
      }
      const current = this.get(id);
      assertCan('delete', current.state, current.name);
      await this.d.files.removeDir(this.d.layout.vmDir(id));
      this.d.records.transact(() => {
        this.d.vms.delete(id);
        this.d.errors.deleteFor(id);
        this.d.records.emit('vm.deleted', current, {});
      });
    });
    // Its top layer, and the bases only it still needed, go now; clones keep what they share.
    await this.d.pool.collect().catch((e: unknown) => this.d.log.warn({ err: errorMessage(e) }, 'disk layer collection failed'));
  }

  reorder(refs: string[]): readonly Vm[] {
    const ids = refs.map((r) => this.get(r).id);
    if (new Set(ids).size !== ids.length) throw invalid('order names a VM twice', { field: 'order' });
    const rest = this.d.vms.list().map((v) => v.id).filter((id) => !ids.includes(id));
    this.d.vms.setOrder([...ids, ...rest]);
    return this.d.vms.list();
  }

  /** Records a changed disk size (the disk service grew the image). */
  recordDiskSize(id: string, diskGB: number): Vm {
    return this.d.records.transact(() => {
      const next: Vm = { ...this.get(id), diskGB, updatedAt: new Date().toISOString() };
      this.d.vms.update(next);
      this.d.records.emit('vm.updated', next, { changes: ['diskGB'] });
      return next;
    });
  }
}

/**
 * Something to boot from, and one kind of it: a distro brings its own disk, so it takes none of the
 * others; without any of them the VM would have a blank disk and nothing to put on it.
 */
function assertBootable(input: CreateVmInput): void {
  const sources = (['distro', 'image', 'kernel', 'iso'] as const).filter((k) => input[k] !== undefined);
  if (sources.length === 0) {
    throw invalid('nothing to boot: give `distro` (a catalog id, see GET /api/v1/distros), `image` (a disk image), `kernel` (with `initrd` and `cmdline`) or `iso`',
      { field: 'distro' });
  }
  if (input.distro !== undefined) {
    const extra = (['image', 'imageFormat', 'kernel', 'initrd', 'cmdline', 'iso'] as const).filter((k) => input[k] !== undefined);
    if (extra.length > 0) {
      throw invalid(`\`distro\` brings its own disk and boot loader: leave out ${extra.map((k) => `\`${k}\``).join(', ')}`, { field: extra[0] });
    }
  }
}
