import { invalid } from '../domain/errors.js';
import { assertCan } from '../domain/vm-state.js';
import type { Vm } from '../domain/vm.js';
import { LIMITS } from '../domain/vm.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { DataLayout } from './layout.js';
import type { VmService } from './vm-service.js';

export class DiskService {
  constructor(private readonly d: { vms: VmService; disks: DiskStore; layout: DataLayout }) {}

  /**
   * Grows the disk: online through QMP when QEMU runs, with qemu-img otherwise. Shrinking would cut
   * off guest data and is refused. Internal snapshots are no obstacle (QEMU 7.2 resizes such a qcow2
   * both ways): each keeps its own size, which restoring it brings back.
   */
  async resize(ref: string, sizeGB: number): Promise<Vm> {
    if (!Number.isInteger(sizeGB) || sizeGB < 1 || sizeGB > LIMITS.diskGBMax) {
      throw invalid(`sizeGB must be a whole number from 1 to ${LIMITS.diskGBMax}`, { field: 'sizeGB' });
    }
    return this.d.vms.exclusive(ref, 'disk-resize', async (ctx) => {
      const { vm } = ctx;
      assertCan('resizeDisk', vm.state, vm.name);
      const path = this.d.layout.vmPaths(vm.id).disk;
      const current = Math.ceil((await this.d.disks.layerFacts(path)).virtualSize / 1024 ** 3);
      if (sizeGB <= current) {
        throw invalid(`the disk of '${vm.name}' is ${current} GiB; the new size must be larger (shrinking is refused: it would cut off guest data)`, { field: 'sizeGB' });
      }
      if (ctx.instance) await ctx.instance.resizeDisk(sizeGB * 1024 ** 3);
      else await this.d.disks.resize(path, sizeGB);
      return this.d.vms.recordDiskSize(vm.id, sizeGB);
    });
  }
}
