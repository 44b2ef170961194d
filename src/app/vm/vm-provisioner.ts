import type { Distro } from '../../domain/distro.js';
import type { LocalImage } from '../../domain/download.js';
import { DomainError } from '../../domain/errors.js';
import type { Vm } from '../../domain/vm.js';
import type { DiskPool } from '../../ports/disk-pool.js';
import type { DiskStore } from '../../ports/disk-store.js';
import type { Logger } from '../../ports/logger.js';
import { errorMessage } from '../../util/errors.js';
import type { DataLayout } from '../layout.js';
import type { OperationLocks } from '../operation-lock.js';
import type { VmRecords } from './vm-records.js';

/** What VM creation needs of the distro images (the download service). */
export interface DistroImages {
  /** The catalog entry; DISTRO_NOT_FOUND when there is none. */
  distro(id: string): Distro;
  /** The verified image when it is local now. */
  verifiedLocal(id: string): Promise<LocalImage | undefined>;
  /** The verified image once the download it starts or joins has completed; rejects with the download's failure. */
  ensure(id: string): Promise<LocalImage>;
}

const GiB = 1024 ** 3;

/**
 * Distro VMs get their disk here: an empty qcow2 top layer over the image's shared, read-only base layer
 * (O(1) whatever the image's size). When the image is not local yet the VM waits in `provisioning` while
 * the download runs, and this finishes the create in the background: `stopped` with its disk once the
 * image is verified, or `error` with the download's reason and code.
 */
export class VmProvisioner {
  /** VMs waiting for their image: settles with the VM once it is stopped, or rejects with why not. */
  private readonly pending = new Map<string, Promise<Vm>>();
  private closing = false;

  constructor(private readonly d: {
    records: VmRecords; locks: OperationLocks; images: DistroImages; disks: DiskStore; pool: DiskPool; layout: DataLayout; log: Logger;
  }) {}

  get images(): DistroImages {
    return this.d.images;
  }

  /**
   * Links the VM's disk to a new top layer over the image's base, `diskGB` large or the image's own size
   * when that is larger; returns the size the disk has.
   */
  async makeDisk(vmId: string, image: LocalImage, diskGB: number): Promise<number> {
    const base = await this.d.pool.imageBase({ path: image.path, format: image.format, algorithm: image.algorithm, digest: image.digest });
    const top = this.d.pool.reserve();
    try {
      const imageGB = Math.ceil((await this.d.disks.layerFacts(base.path)).virtualSize / GiB);
      const size = Math.max(diskGB, imageGB);
      await this.d.disks.createOverlay(top.path, this.d.pool.backingName(base.path), size * GiB);
      await this.d.pool.point(this.d.layout.vmPaths(vmId).disk, top.path);
      return size;
    } finally {
      top.release();
      base.release();
    }
  }

  /** Waits in the background for the image of a VM recorded as provisioning, then gives it its disk. */
  begin(vm: Vm): void {
    if (this.pending.has(vm.id) || this.closing) return;
    const p = this.finish(vm).finally(() => { if (this.pending.get(vm.id) === p) this.pending.delete(vm.id); });
    // Whoever waits (a launch) sees the outcome; nobody waiting is fine too.
    p.catch(() => undefined);
    this.pending.set(vm.id, p);
  }

  /**
   * The VM once it has its disk: at once when it is not provisioning (stopped, or error with its reason),
   * else when its image arrives; rejects with the download's failure (the VM is in error then).
   */
  async settled(id: string): Promise<Vm> {
    const p = this.pending.get(id);
    if (p) return p;
    const vm = this.d.records.get(id);
    if (vm.state === 'provisioning') {
      this.begin(vm);
      return this.pending.get(id) ?? vm;
    }
    return vm;
  }

  /** At start-up (after the downloads resumed): VMs left provisioning wait for their image again. */
  resumeAll(): string[] {
    const resumed: string[] = [];
    for (const vm of this.d.records.list()) {
      if (vm.state !== 'provisioning') continue;
      this.begin(vm);
      resumed.push(vm.name);
    }
    return resumed;
  }

  /** Daemon shutdown: a download interrupted now resumes at the next start, and so does the VM's wait. */
  close(): void {
    this.closing = true;
  }

  private async finish(vm: Vm): Promise<Vm> {
    const distro = vm.distro ?? '';
    let image: LocalImage;
    try {
      image = await this.d.images.ensure(distro);
    } catch (e) {
      const cur = this.d.records.find(vm.id);
      if (this.closing || !cur || cur.state !== 'provisioning') throw e;
      const code = e instanceof DomainError ? e.code : 'DOWNLOAD_FAILED';
      const detail = e instanceof DomainError ? e.message : `the image of '${distro}' could not be fetched: ${errorMessage(e)}`;
      this.d.records.fail(cur, detail, 'operation', { code, distro });
      throw e instanceof DomainError ? e : new DomainError(code, detail, { distro });
    }
    return this.d.locks.run(vm.id, 'provision', async () => {
      const cur = this.d.records.find(vm.id);
      if (!cur || cur.state !== 'provisioning') throw gone(vm);
      let diskGB: number;
      try {
        diskGB = await this.makeDisk(cur.id, image, cur.diskGB);
      } catch (e) {
        const detail = `making the disk from the image of '${distro}' failed: ${errorMessage(e)}`;
        this.d.records.fail(cur, detail, 'operation', { code: e instanceof DomainError ? e.code : 'INTERNAL', distro });
        throw e instanceof DomainError ? e : new DomainError('INTERNAL', detail);
      }
      const next: Vm = { ...cur, state: 'stopped', diskGB, updatedAt: new Date().toISOString() };
      this.d.records.transact(() => {
        this.d.records.update(next);
        this.d.records.emit('vm.updated', next, { changes: diskGB !== cur.diskGB ? ['state', 'diskGB'] : ['state'], previousState: 'provisioning', distro });
      });
      this.d.log.info({ vm: next.name, distro, diskGB }, 'distro VM provisioned');
      return next;
    });
  }
}

function gone(vm: Vm): DomainError {
  return new DomainError('CONFLICT', `VM '${vm.name}' was deleted (or changed) while its image downloaded`, { vm: vm.id });
}
