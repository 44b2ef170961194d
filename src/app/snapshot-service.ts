import { errorMessage } from '../util/errors.js';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../domain/errors.js';
import type { Snapshot } from '../domain/snapshot.js';
import { assertCan, isUp } from '../domain/vm-state.js';
import { assertValidName, isUuid, type Vm } from '../domain/vm.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { EventSink } from '../ports/event-sink.js';
import type { SnapshotRepo } from '../ports/repos.js';
import type { DataLayout } from './layout.js';
import { qemuStep } from './qemu-step.js';
import type { Logger } from '../ports/logger.js';
import type { ExclusiveContext, VmService } from './vm-service.js';
import type { Quiescer } from './agent/quiesce.js';

/** Room a snapshot's metadata and a few changed clusters take beyond its RAM. */
const SNAPSHOT_SLACK_BYTES = 16 * 1024 * 1024;

export interface CreateSnapshotInput {
  name?: string;
  description?: string;
  /** Include RAM and device state (default: yes when the VM is running or paused). */
  memory?: boolean;
}

/**
 * Internal qcow2 snapshots. The tag inside the qcow2 file is the snapshot's id, so names can change
 * freely and never collide with what QEMU stores. Metadata is written only after QEMU reports success,
 * and start-up reconciles it with what the disks really hold.
 */
export class SnapshotService {
  constructor(private readonly d: {
    vms: VmService; snapshots: SnapshotRepo; disks: DiskStore; layout: DataLayout; events: EventSink; log: Logger;
    /** Freezes a running guest's filesystems around a disk-only snapshot (through its agent, when it answers). */
    quiesce?: Quiescer;
    /** Free bytes on the filesystem holding a path: tells a full disk apart from other QEMU failures. */
    freeDiskBytes?: (path: string) => Promise<number>;
  }) {}

  list(ref: string): Snapshot[] {
    return this.d.snapshots.list(this.d.vms.get(ref).id);
  }

  get(ref: string, sid: string): Snapshot {
    const vm = this.d.vms.get(ref);
    return this.find(vm, sid);
  }

  async create(ref: string, input: CreateSnapshotInput): Promise<Snapshot> {
    return this.d.vms.exclusive(ref, 'snapshot', async (ctx) => {
      const { vm } = ctx;
      const name = input.name ?? `snap-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      assertValidName(name);
      if (this.d.snapshots.findByName(vm.id, name)) {
        throw new DomainError('CONFLICT', `VM '${vm.name}' already has a snapshot named '${name}'`, { field: 'name' });
      }
      const id = randomUUID();
      assertCan('snapshot', vm.state, vm.name);
      let kind: Snapshot['kind'];
      let quiesced = false;
      const qemu = ctx.instance;
      if (qemu) {
        kind = input.memory === false ? 'disk' : 'live';
        const take = (): Promise<void> => this.roomy(vm, kind, qemuStep(`snapshot of '${vm.name}'`, () => (kind === 'live' ? qemu.snapshotSave(id) : qemu.diskSnapshot(id))));
        // The disk alone of a running guest is what a power cut would leave, unless its filesystems are
        // frozen meanwhile. With RAM the pair is consistent as it is, and a guest frozen when saved would
        // come back frozen on every restore (libvirt, too, quiesces disk-only snapshots only).
        if (kind === 'disk' && vm.state === 'running' && this.d.quiesce) quiesced = (await this.d.quiesce.quiesced(vm.id, take)).frozen;
        else await take();
      } else {
        if (input.memory === true) {
          throw new DomainError('INVALID_STATE', `VM '${vm.name}' is ${vm.state}: there is no RAM to save (omit memory or set it false)`, { state: vm.state });
        }
        kind = 'disk';
        await this.roomy(vm, kind, this.d.disks.snapshotCreate(this.disk(vm), id));
      }
      const snap: Snapshot = {
        id, vmId: vm.id, tag: id, name, description: input.description ?? null, kind,
        vmState: isUp(vm.state) ? vm.state : 'stopped', diskGB: vm.diskGB, createdAt: new Date().toISOString(),
      };
      this.d.snapshots.insert(snap);
      this.emit('snapshot.created', vm, snap, kind === 'disk' && qemu ? { quiesced } : {});
      return snap;
    });
  }

  /**
   * QEMU reports a full disk during savevm as an I/O error ("Error while writing VM state"), qemu-img as a
   * write failure: when the VM's filesystem has less room than the snapshot could need, the failure is
   * the host's lack of space (507), not QEMU's.
   */
  private async roomy(vm: Vm, kind: Snapshot['kind'], step: Promise<void>): Promise<void> {
    try {
      await step;
    } catch (e) {
      if ((e instanceof DomainError && e.code !== 'QEMU_FAILED' && e.code !== 'INTERNAL') || !this.d.freeDiskBytes) throw e;
      const need = (kind === 'live' ? vm.memoryMB : 0) * 1024 * 1024 + SNAPSHOT_SLACK_BYTES;
      const free = await this.d.freeDiskBytes(this.d.layout.vmDir(vm.id)).catch(() => Number.POSITIVE_INFINITY);
      if (free >= need) throw e;
      throw new DomainError('INSUFFICIENT_STORAGE', `no room for a snapshot of '${vm.name}': ${free} bytes free on the data folder's disk (${errorMessage(e)})`);
    }
  }

  async restore(ref: string, sid: string, opts: { force?: boolean } = {}): Promise<{ vm: Vm; snapshot: Snapshot }> {
    return this.d.vms.exclusive(ref, 'restore', async (ctx) => {
      assertCan('restore', ctx.vm.state, ctx.vm.name);
      const snap = this.find(ctx.vm, sid);
      const restored = snap.kind === 'live' ? await this.restoreLive(ctx, snap) : await this.restoreDisk(ctx, snap, opts.force ?? false);
      // The qcow2 went back to the size it had then (a later grow is undone with the rest of the disk).
      const vm = restored.diskGB === snap.diskGB ? restored : this.d.vms.recordDiskSize(restored.id, snap.diskGB);
      this.emit('snapshot.restored', vm, snap);
      return { vm, snapshot: snap };
    });
  }

  /** RAM, devices and disk come back; the VM ends in the run state it had when the snapshot was taken. */
  private async restoreLive(ctx: ExclusiveContext, snap: Snapshot): Promise<Vm> {
    const { vm } = ctx;
    const target = snap.vmState === 'paused' ? 'paused' : 'running';
    const qemu = ctx.instance;
    if (qemu) {
      await qemuStep(`restore of '${vm.name}'`, () => qemu.snapshotLoad(snap.tag));
      // The load job leaves the guest in the run state it found it in: only a different one needs a QMP call.
      if (vm.state === target) return this.d.vms.get(vm.id);
    } else {
      await ctx.launch({ loadSnapshot: snap.tag });
    }
    return ctx.setRunState(target);
  }

  /** A disk-only snapshot under a running guest would pull its disk away: refused unless forced. */
  private async restoreDisk(ctx: ExclusiveContext, snap: Snapshot, force: boolean): Promise<Vm> {
    const { vm } = ctx;
    if (ctx.instance) {
      if (!force) {
        throw new DomainError('INVALID_STATE',
          `snapshot '${snap.name}' holds the disk only; restoring it needs VM '${vm.name}' stopped (it is ${vm.state}); pass force to power it off first`,
          { state: vm.state });
      }
      await ctx.powerOff();
    }
    await this.d.disks.snapshotApply(this.disk(vm), snap.tag);
    return this.d.vms.get(vm.id);
  }

  async delete(ref: string, sid: string): Promise<void> {
    await this.d.vms.exclusive(ref, 'snapshot-delete', async (ctx) => {
      const snap = this.find(ctx.vm, sid);
      const qemu = ctx.instance;
      if (qemu) await qemuStep(`snapshot delete on '${ctx.vm.name}'`, () => qemu.snapshotDelete(snap.tag));
      else await this.d.disks.snapshotDelete(this.disk(ctx.vm), snap.tag);
      this.d.snapshots.delete(snap.id);
      this.emit('snapshot.deleted', ctx.vm, snap);
    });
  }

  /**
   * Start-up: a row whose qcow2 snapshot is missing (a job that failed or was cut short) could never be
   * restored, so it goes; a Grove-made tag without a row (the daemon died before recording it) is
   * removed from the disk. Tags made by hand with other names are left alone.
   */
  async reconcile(): Promise<{ removedRows: number; removedTags: number }> {
    let removedRows = 0;
    let removedTags = 0;
    for (const vm of this.d.vms.list()) {
      // A VM waiting for its distro image has no disk yet, hence no snapshots.
      if (vm.state === 'provisioning') continue;
      const rows = this.d.snapshots.list(vm.id);
      try {
        await this.d.vms.exclusive(vm.id, 'snapshot-reconcile', async (ctx) => {
          const tags = ctx.instance
            ? await ctx.instance.snapshotTags()
            : (await this.d.disks.snapshotList(this.disk(vm))).map((s) => s.tag);
          for (const r of rows) {
            if (!tags.includes(r.tag)) { this.d.snapshots.delete(r.id); removedRows++; }
          }
          for (const t of tags) {
            if (!isUuid(t) || rows.some((r) => r.tag === t)) continue;
            if (ctx.instance) await ctx.instance.snapshotDelete(t); else await this.d.disks.snapshotDelete(this.disk(vm), t);
            removedTags++;
          }
        });
      } catch (e) {
        this.d.log.warn({ vm: vm.name, err: errorMessage(e) }, 'could not reconcile snapshots');
      }
    }
    return { removedRows, removedTags };
  }

  private find(vm: Vm, sid: string): Snapshot {
    const byId = isUuid(sid) ? this.d.snapshots.get(sid.toLowerCase()) : undefined;
    const snap = (byId && byId.vmId === vm.id ? byId : undefined) ?? this.d.snapshots.findByName(vm.id, sid);
    if (!snap) throw new DomainError('NOT_FOUND', `VM '${vm.name}' has no snapshot named or with id '${sid}'`, { snapshot: sid });
    return snap;
  }

  private disk(vm: Vm): string {
    return this.d.layout.vmPaths(vm.id).disk;
  }

  private emit(type: 'snapshot.created' | 'snapshot.restored' | 'snapshot.deleted', vm: Vm, snap: Snapshot, extra: Record<string, unknown> = {}): void {
    this.d.events.publish({ type, vmId: vm.id, vmName: vm.name, data: { snapshot: snap, state: this.d.vms.get(vm.id).state, ...extra } });
  }
}
