import { errorMessage } from '../util/errors.js';
import { randomUUID } from 'node:crypto';
import { constants as fsc, copyFile, link, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainError } from '../domain/errors.js';
import type { Snapshot } from '../domain/snapshot.js';
import { assertCan } from '../domain/vm-state.js';
import { NAME_MAX_LENGTH, resolveNetwork, type Vm, type VmNetworkInput } from '../domain/vm.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { VmInstance } from '../ports/hypervisor.js';
import type { SnapshotRepo } from '../ports/repos.js';
import type { DiskPool, PinnedLayer } from '../ports/disk-pool.js';
import type { DataLayout } from './layout.js';
import { qemuStep } from './qemu-step.js';
import type { ExclusiveContext, VmService } from './vm-service.js';
import type { Quiescer } from './agent/quiesce.js';

/**
 * `overlay`: the source's disk became a read-only base shared by two new empty layers, one per VM (O(1)).
 * `reflink`: the source's top layer was reflinked (O(1) where the filesystem shares blocks).
 * `copy`: the top layer was copied (O(its allocated size)) because it holds internal snapshots and the
 * filesystem cannot reflink.
 */
export type CloneMethod = 'overlay' | 'reflink' | 'copy';

export interface CloneResult {
  vm: Vm;
  method: CloneMethod;
}

/**
 * Copy-on-write clones. The clone gets the source's hardware, boot files, network and disk as they are
 * now (crash-consistent when the source runs: what a power cut would leave), plus its snapshots when the
 * disk is copied or reflinked. Neither VM depends on the other afterwards: shared bases are read-only,
 * and each VM's snapshots live in its own top layer.
 */
export class CloneService {
  constructor(private readonly d: {
    vms: VmService; pool: DiskPool; disks: DiskStore; snapshots: SnapshotRepo; layout: DataLayout;
    /** Freezes a running source's filesystems while its disk is split off (through its agent, when it answers). */
    quiesce?: Quiescer;
  }) {}

  async clone(ref: string, input: { name?: string; network?: VmNetworkInput }): Promise<CloneResult> {
    this.d.vms.get(ref); // an unknown source is a 404 before any name conflict
    if (input.name !== undefined) this.d.vms.assertNameFree(input.name);
    return this.d.vms.exclusive(ref, 'clone', async (ctx) => {
      const src = ctx.vm;
      assertCan('clone', src.state, src.name);
      const name = input.name ?? this.freeName(src.name);
      this.d.vms.assertNameFree(name);
      // Host port forwards would collide with the source's: the clone gets none unless it is given a network.
      const network = resolveNetwork(input.network ?? { portForwards: [] }, src.network);
      const staging = this.d.layout.stagingDir('clone', randomUUID());
      await mkdir(staging, { recursive: true, mode: 0o700 });
      const top = this.d.pool.reserve();
      const pins = [top];
      try {
        if (src.boot.kernel) await shareFile(src.boot.kernel, join(staging, 'kernel'));
        if (src.boot.initrd) await shareFile(src.boot.initrd, join(staging, 'initrd'));
        const snapshots = this.d.snapshots.list(src.id);
        // Internal snapshots live in the top layer; freezing it as a shared base would strand them (they
        // could no longer be applied without changing the clone too), so such a layer is copied instead.
        const method: CloneMethod = (await this.d.pool.canReflink()) ? 'reflink' : snapshots.length > 0 ? 'copy' : 'overlay';
        const split = (): Promise<void> => (method === 'overlay' ? this.layer(ctx, top.path, pins) : this.copy(ctx, top.path));
        // A running source is otherwise cloned as a power cut would leave it; frozen, as its filesystems hold it.
        const quiesced = ctx.instance !== null && src.state === 'running' && this.d.quiesce
          ? (await this.d.quiesce.quiesced(src.id, split)).frozen
          : (await split(), false);
        await this.d.pool.point(join(staging, 'disk.qcow2'), top.path);
        const vm = await this.d.vms.importStaged({
          name, staging,
          spec: { cpu: src.cpu, memoryMB: src.memoryMB, diskGB: src.diskGB, network, distro: src.distro, ...(src.boot.cmdline !== undefined ? { cmdline: src.boot.cmdline } : {}) },
          hasKernel: src.boot.kernel !== undefined, hasInitrd: src.boot.initrd !== undefined,
          within: (clone) => { if (method !== 'overlay') for (const s of snapshots) this.d.snapshots.insert(copyOf(s, clone.id)); },
          origin: { clonedFrom: { id: src.id, name: src.name }, method, sourceState: src.state, ...(ctx.instance ? { quiesced } : {}) },
          // A clone is a new instance: cloud-init runs its first boot again (hostname, host keys).
          cloudInit: this.d.vms.cloudInitConfig(src.id),
        });
        return { vm, method };
      } catch (e) {
        await rm(staging, { recursive: true, force: true });
        // Layers made for a clone that did not happen are unreachable: collected once unpinned.
        for (const p of pins) p.release();
        void this.d.pool.collect().catch(() => undefined);
        throw e;
      } finally {
        for (const p of pins) p.release();
      }
    });
  }

  /**
   * The source's top becomes a base; the source and the clone each get an empty layer over it. A running
   * source is switched onto its new layer by QEMU (blockdev-snapshot: atomic for guest I/O). The source's
   * link is re-pointed first: an empty layer over the old top reads the same, so a crash anywhere in
   * between leaves a working VM.
   */
  private async layer(ctx: ExclusiveContext, cloneTop: string, pins: PinnedLayer[]): Promise<void> {
    const src = ctx.vm;
    const running = ctx.instance;
    let base: string;
    if (running) {
      base = await qemuTop(running, src.name);
      if (!this.d.pool.holds(base)) {
        throw new DomainError('CONFLICT', `VM '${src.name}' was started by an earlier Grove whose disks were not layered; stop and start it once, then clone it while it runs`, { state: src.state });
      }
    } else {
      base = await this.d.pool.adopt(src.id);
    }
    const [below, { virtualSize, holdsData }] = await Promise.all([this.d.disks.backingName(base), this.d.disks.layerFacts(base)]);
    if (!running && below !== null && !holdsData) {
      // A stopped source that has not written since its last clone sits on an empty layer: the clone
      // shares the base below it, so cloning a template many times does not deepen its chain.
      await this.d.disks.createOverlay(cloneTop, below, virtualSize);
      return;
    }
    const srcTop = this.d.pool.reserve();
    pins.push(srcTop);
    const backing = this.d.pool.backingName(base);
    await Promise.all([
      this.d.disks.createOverlay(srcTop.path, backing, virtualSize),
      this.d.disks.createOverlay(cloneTop, backing, virtualSize),
    ]);
    const link = this.d.layout.vmPaths(src.id).disk;
    await this.d.pool.point(link, srcTop.path);
    if (running) {
      try {
        await running.switchDiskTo(srcTop.path);
      } catch (e) {
        // A timed-out command may still have been carried out: the link goes back only if QEMU is known
        // to be on the old layer. Otherwise it stays on the new one, which reads the same either way.
        if ((await running.diskFile().catch(() => null)) === base) await this.d.pool.point(link, base);
        throw new DomainError('QEMU_FAILED', `could not move the running disk of '${src.name}' onto a new layer: ${errorMessage(e)}`);
      }
    }
    await this.d.pool.freeze(base);
  }

  /** The top layer copied (reflinked where possible); a running guest is frozen meanwhile so the copy is consistent. */
  private async copy(ctx: ExclusiveContext, cloneTop: string): Promise<void> {
    const src = ctx.vm;
    const live = ctx.instance;
    const top = live ? await qemuTop(live, src.name) : (await this.d.pool.top(src.id)).path;
    // Stopping the vCPUs also drains and flushes QEMU's block layer, so the file holds everything written.
    const thaw = live !== null && src.state === 'running';
    if (thaw) await qemuStep(`pause of '${src.name}'`, () => live.pause());
    try {
      await this.d.pool.copyLayer(top, cloneTop);
    } finally {
      if (thaw) {
        await qemuStep(`resume of '${src.name}'`, () => live.resume()).catch(async (e: unknown) => {
          // Left paused: say so, rather than claim it runs.
          await ctx.setRunState('paused').catch(() => undefined);
          throw e;
        });
      }
    }
  }

  /** `<source>-clone`, then `-clone-2`, … kept within the name length limit. */
  private freeName(source: string): string {
    for (let i = 1; ; i++) {
      const suffix = i === 1 ? '-clone' : `-clone-${i}`;
      const name = `${source.slice(0, NAME_MAX_LENGTH - suffix.length)}${suffix}`;
      if (!this.d.vms.nameTaken(name)) return name;
    }
  }
}

/**
 * Boot files are never written after a VM is made, so the clone shares them by hard link (a copy where
 * that fails): megabytes of kernel and initrd would otherwise cost more than the disk clone itself.
 */
async function shareFile(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to, fsc.COPYFILE_FICLONE);
  }
}

/** What QEMU writes to, not what the link says: after a crash the two may differ. */
function qemuTop(instance: VmInstance, vmName: string): Promise<string> {
  return qemuStep(`disk query of '${vmName}'`, () => instance.diskFile());
}

function copyOf(s: Snapshot, vmId: string): Snapshot {
  return { ...s, id: randomUUID(), vmId };
}
