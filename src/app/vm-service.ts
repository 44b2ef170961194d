import type { CloudInitConfig } from '../domain/cloud-init.js';
import type { Vm } from '../domain/vm.js';
import type { DiskPool } from '../ports/disk-pool.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { EventSink } from '../ports/event-sink.js';
import type { Hypervisor, ResourceUsage, VmInstance } from '../ports/hypervisor.js';
import type { Logger } from '../ports/logger.js';
import type { Transact, VmErrorRecord, VmErrorRepo, VmRepo } from '../ports/repos.js';
import type { SavedStateFiles, VmFiles } from '../ports/vm-files.js';
import type { CloudInitService } from './cloud-init-service.js';
import type { ConsoleService } from './console/console-service.js';
import type { DataLayout } from './layout.js';
import { OperationLocks, type VmOperation } from './operation-lock.js';
import { VmCatalog, type CreateVmInput, type ImportStagedInput, type UpdateVmInput } from './vm/vm-catalog.js';
import { VmLifecycle, type ExclusiveContext, type RuntimeInfo, type StartResult, type StopAllResult } from './vm/vm-lifecycle.js';
import { VmRecords } from './vm/vm-records.js';
import { VmSupervisor } from './vm/vm-supervisor.js';
import { VmSuspension, type SuspendStatus } from './vm/vm-suspension.js';
import { VmProvisioner, type DistroImages } from './vm/vm-provisioner.js';
import { VmAutostart, type AutostartOutcome } from './vm/vm-autostart.js';

export type { Logger } from '../ports/logger.js';
export type { CreateVmInput, ImportStagedInput, UpdateVmInput } from './vm/vm-catalog.js';
export type { ExclusiveContext, RuntimeInfo, StartResult, StopAllResult } from './vm/vm-lifecycle.js';
export type { SuspendStatus } from './vm/vm-suspension.js';
export type { DistroImages } from './vm/vm-provisioner.js';
export type { AutostartOutcome } from './vm/vm-autostart.js';

export interface VmServiceDeps {
  vms: VmRepo;
  errors: VmErrorRepo;
  events: EventSink;
  hypervisor: Hypervisor;
  disks: DiskStore;
  pool: DiskPool;
  layout: DataLayout;
  console: ConsoleService;
  log: Logger;
  transact: Transact;
  cloudInit: CloudInitService;
  /** Asks the guest OS to power off through its agent; false when no agent answers (a late-bound hook: the agent service needs this one). */
  guestShutdown?: (vmId: string) => Promise<boolean>;
  files: VmFiles;
  savedStates: SavedStateFiles;
  images: DistroImages;
}

/**
 * The VMs, written once: REST, MCP, the CLI and the other services are faces over this one object. It
 * only wires and forwards to its parts — the definition controller (catalog), the runtime controller
 * (lifecycle) with suspend to disk, the supervisor of live QEMUs, and the provisioner that gives distro VMs
 * their disk — which share one operation lock per VM.
 */
export class VmService {
  private readonly catalog: VmCatalog;
  private readonly lifecycle: VmLifecycle;
  private readonly suspension: VmSuspension;
  private readonly supervisor: VmSupervisor;
  private readonly provisioner: VmProvisioner;
  private readonly autostarter: VmAutostart;

  constructor(d: VmServiceDeps) {
    const locks = new OperationLocks();
    const records = new VmRecords({ vms: d.vms, errors: d.errors, events: d.events, transact: d.transact, log: d.log });
    this.supervisor = new VmSupervisor({
      records, locks, hypervisor: d.hypervisor, console: d.console, pool: d.pool, layout: d.layout, savedStates: d.savedStates, log: d.log,
    });
    this.suspension = new VmSuspension({ records, locks, supervisor: this.supervisor, savedStates: d.savedStates, layout: d.layout });
    this.lifecycle = new VmLifecycle({
      records, locks, supervisor: this.supervisor, suspension: this.suspension, hypervisor: d.hypervisor, pool: d.pool, console: d.console,
      files: d.files, layout: d.layout, log: d.log, ...(d.guestShutdown ? { guestShutdown: d.guestShutdown } : {}),
    });
    this.provisioner = new VmProvisioner({ records, locks, images: d.images, disks: d.disks, pool: d.pool, layout: d.layout, log: d.log });
    this.catalog = new VmCatalog({
      records, vms: d.vms, errors: d.errors, locks, lifecycle: this.lifecycle, provisioner: this.provisioner, disks: d.disks, pool: d.pool, files: d.files, layout: d.layout,
      cloudInit: d.cloudInit, log: d.log,
    });
    this.autostarter = new VmAutostart({
      vms: records, start: (id) => this.lifecycle.start(id), log: d.log,
      fail: (vm, detail) => records.fail(vm, detail, 'operation', { autostart: true }),
    });
  }

  // ---- definition and queries ----------------------------------------------------------------
  list(): readonly Vm[] { return this.catalog.list(); }
  get(ref: string): Vm { return this.catalog.get(ref); }
  nameTaken(name: string): boolean { return this.catalog.nameTaken(name); }
  assertNameFree(name: string, exceptId?: string): void { this.catalog.assertNameFree(name, exceptId); }
  errors(ref: string, limit = 50): VmErrorRecord[] { return this.catalog.errors(ref, limit); }
  cloudInitConfig(id: string): CloudInitConfig | null { return this.catalog.cloudInitConfig(id); }
  create(input: CreateVmInput): Promise<Vm> { return this.catalog.create(input); }
  importStaged(input: ImportStagedInput): Promise<Vm> { return this.catalog.importStaged(input); }
  update(ref: string, patch: UpdateVmInput): Promise<Vm> { return this.catalog.update(ref, patch); }
  delete(ref: string, force: boolean): Promise<void> { return this.catalog.delete(ref, force); }
  reorder(refs: string[]): readonly Vm[] { return this.catalog.reorder(refs); }
  recordDiskSize(id: string, diskGB: number): Vm { return this.catalog.recordDiskSize(id, diskGB); }
  /** The VM once it has its disk (a provisioning VM's image arrived); rejects with the download's failure. */
  provisioned(ref: string): Promise<Vm> { return this.provisioner.settled(this.catalog.get(ref).id); }

  // ---- lifecycle -----------------------------------------------------------------------------
  start(ref: string, waitFor?: { console: string; timeoutSeconds: number }): Promise<StartResult> { return this.lifecycle.start(ref, waitFor); }
  stop(ref: string, opts: { timeoutSeconds?: number; force?: boolean } = {}): Promise<Vm> { return this.lifecycle.stop(ref, opts); }
  forceStop(ref: string): Promise<Vm> { return this.lifecycle.forceStop(ref); }
  restart(ref: string, opts: { hard?: boolean; timeoutSeconds?: number } = {}): Promise<Vm> { return this.lifecycle.restart(ref, opts); }
  pause(ref: string): Promise<Vm> { return this.lifecycle.pause(ref); }
  resume(ref: string): Promise<Vm> { return this.lifecycle.resume(ref); }
  stopAll(opts: { timeoutSeconds?: number; force?: boolean }): Promise<StopAllResult> { return this.lifecycle.stopAll(opts); }
  runtime(ref: string): Promise<RuntimeInfo> { return this.lifecycle.runtime(ref); }
  usage(ref: string): Promise<{ usage: ResourceUsage; uptimeSeconds: number } | null> { return this.lifecycle.usage(ref); }
  liveInstance(ref: string): { vm: Vm; instance: VmInstance } { return this.lifecycle.liveInstance(ref); }
  consoleTarget(ref: string): Vm { return this.lifecycle.consoleTarget(ref); }
  exclusive<T>(ref: string, operation: VmOperation, fn: (ctx: ExclusiveContext) => Promise<T>): Promise<T> {
    return this.lifecycle.exclusive(ref, operation, fn);
  }

  // ---- suspend to disk -----------------------------------------------------------------------
  suspend(ref: string): Promise<Vm> { return this.suspension.suspend(ref); }
  suspendStatus(ref: string): Promise<SuspendStatus> { return this.suspension.status(ref); }

  // ---- daemon start-up / shutdown ------------------------------------------------------------
  recover(): Promise<{ adopted: string[]; reconciled: string[] }> { return this.supervisor.recover(); }
  /** VMs left provisioning by the previous run wait for their image again (call once the downloads resumed). */
  resumeProvisioning(): string[] { return this.provisioner.resumeAll(); }
  /** Starts the autostart VMs that are not up (call once recovered; the API may already answer). */
  autostart(): Promise<AutostartOutcome> { return this.autostarter.run(); }
  /** Lets an autostart in progress finish its current VM and start no more. */
  stopAutostart(): Promise<void> { return this.autostarter.close(); }
  detachAll(): void {
    this.provisioner.close();
    this.supervisor.detachAll();
  }
  liveCount(): number { return this.supervisor.count(); }
}
