import { errorMessage } from '../util/errors.js';
import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import { copyFile, constants as fsc, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainError, invalid, notFound } from '../domain/errors.js';
import type { EventType } from '../domain/events.js';
import { assertCan, isLive, isUp } from '../domain/vm-state.js';
import { assertValidName, isUuid, resolveNetwork, type Vm, type VmBoot, type VmNetwork, type VmNetworkInput, type VmState } from '../domain/vm.js';
import type { DiskStore } from '../ports/disk-store.js';
import type { Logger } from '../ports/logger.js';
import type { EventSink } from '../ports/event-sink.js';
import type { ExitInfo, Hypervisor, InstanceEvent, LaunchSpec, VmInstance } from '../ports/hypervisor.js';
import type { Transact, VmErrorRecord, VmErrorRepo, VmRepo } from '../ports/repos.js';
import type { ConsoleService, WaitResult } from './console/console-service.js';
import type { DiskPool } from '../ports/disk-pool.js';
import type { DataLayout } from './layout.js';
import { OperationLocks } from './operation-lock.js';
import { resolveAllowedPath } from './path-guard.js';
import { compileWaitPattern } from './console/wait-pattern.js';
import { qemuStep } from './qemu-step.js';
import type { CloudInitService, Provisioned } from './cloud-init-service.js';
import type { CloudInitConfig, CloudInitInput } from '../domain/cloud-init.js';

export type { Logger } from '../ports/logger.js';

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
}

export interface UpdateVmInput {
  name?: string;
  cpu?: number;
  memoryMB?: number;
  network?: VmNetworkInput;
}

export interface StartResult {
  vm: Vm;
  waitFor?: WaitResult;
}

export interface RuntimeInfo {
  state: VmState;
  pid: number | null;
  uptimeSeconds: number | null;
  cpuPercent: number | null;
  rssBytes: number | null;
  disk: { readBytes: number; writeBytes: number; readOps: number; writeOps: number } | null;
  accelerator: Vm['accelerator'];
}

export interface StopAllResult {
  results: { id: string; name: string; ok: boolean; state: VmState; error?: { code: string; detail: string } }[];
}

interface Live {
  instance: VmInstance;
  startedAtMs: number;
  /** Set by an operation that is about to end QEMU, so its exit is not mistaken for a crash. */
  expectingExit: 'stop' | 'kill' | 'suspend' | null;
  exitHandled: Promise<void>;
  cpuSample: { at: number; cpu: number } | null;
}

interface SavedState {
  runState: 'running' | 'paused';
  savedAt: string;
  bytes: number;
}

export interface ExclusiveContext {
  vm: Vm;
  /** The VM's QEMU when it is running or paused (the only states with a guest to act on), else null. */
  instance: VmInstance | null;
  /** Start QEMU (optionally resuming an internal snapshot); the VM must be stopped. */
  launch(opts: { loadSnapshot?: string }): Promise<Vm>;
  /** Bring a live VM's vCPUs to this run state, recording it (and its event) if it changed. */
  setRunState(state: 'running' | 'paused'): Promise<Vm>;
  /** Cut power and wait until QEMU is gone. */
  powerOff(): Promise<void>;
}

export const DEFAULTS = { cpu: 1, memoryMB: 512, diskGB: 8, stopTimeoutSeconds: 60 } as const;

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
}

/** How long a graceful stop waits for the ACPI button to be heard before it also asks the guest agent. */
const ACPI_GRACE_MS = 10_000;

/**
 * The VM lifecycle, written once: REST, MCP and the CLI are faces over these methods. Each mutating
 * operation holds the VM's operation lock; QMP events and process exits move state only when no
 * operation owns the VM, so what the API says and what QEMU does cannot drift apart.
 */
export class VmService {
  private readonly locks = new OperationLocks();
  private readonly live = new Map<string, Live>();

  constructor(private readonly d: VmServiceDeps) {}

  // ---- queries -------------------------------------------------------------------------------

  list(): readonly Vm[] {
    return this.d.vms.list();
  }

  get(ref: string): Vm {
    const vm = (isUuid(ref) ? this.d.vms.get(ref.toLowerCase()) : undefined) ?? this.d.vms.findByName(ref);
    if (!vm) throw notFound(ref);
    return vm;
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

  // ---- definition ----------------------------------------------------------------------------

  async create(input: CreateVmInput): Promise<Vm> {
    this.assertNameFree(input.name);
    if (input.distro !== undefined) {
      // The distro catalog and image downloads arrive with their own endpoints; until then a VM is made
      // from a kernel, a disk image or an ISO the caller placed in images/ or transfer/.
      throw invalid(`creating from a distro is not available in this version: use 'kernel', 'image' or 'iso'`, { field: 'distro' });
    }
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
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    let release = (): void => undefined;
    try {
      // The VM keeps its own copies (reflinked where the filesystem can), so it does not break when
      // the originals change and an export carries everything it needs.
      const boot: VmBoot = {};
      if (resolved.kernel) { boot.kernel = join(paths.dir, 'kernel'); await copyFile(resolved.kernel, boot.kernel, fsc.COPYFILE_FICLONE); }
      if (resolved.initrd) { boot.initrd = join(paths.dir, 'initrd'); await copyFile(resolved.initrd, boot.initrd, fsc.COPYFILE_FICLONE); }
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
      if (seeded) release = seeded.release;

      const vm: Vm = {
        id, name: input.name, state: 'stopped', cpu: input.cpu ?? DEFAULTS.cpu, memoryMB: input.memoryMB ?? DEFAULTS.memoryMB,
        diskGB, distro: input.distro ?? null, boot, network: seeded?.network ?? network, order: this.d.vms.nextOrder(), createdAt: now, updatedAt: now,
        startedAt: null, accelerator: null, lastError: null, cloudInit: seeded?.summary ?? null,
      };
      this.d.transact(() => {
        this.d.vms.insert(vm, seeded?.record ?? null);
        this.emit('vm.created', vm, { vm });
      });
      return vm;
    } catch (e) {
      await rm(paths.dir, { recursive: true, force: true });
      throw isNameClash(e) ? nameConflict(input.name) : e;
    } finally {
      release();
    }
  }

  /** What a VM's cloud-init seed is written from (clones and exports carry it), or null. */
  cloudInitConfig(id: string): CloudInitConfig | null {
    return this.d.vms.cloudInit(id)?.config ?? null;
  }

  /**
   * Turns a folder already holding a checked disk (and kernel/initrd) into a new VM: the folder is moved
   * into place, and the record, `within` (e.g. snapshot metadata) and the event share one transaction.
   */
  async importStaged(input: {
    name: string; staging: string; spec: { cpu: number; memoryMB: number; diskGB: number; cmdline?: string; network: VmNetwork };
    hasKernel: boolean; hasInitrd: boolean; within: (vm: Vm) => void;
    /** Where the VM came from, for its `vm.created` event. */
    origin: Record<string, unknown>;
    /** A new instance of this cloud-init config: its own seed (instance-id, hostname) is written. */
    cloudInit?: CloudInitConfig | null;
  }): Promise<Vm> {
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

  private async recordStaged(id: string, dir: string, input: Parameters<VmService['importStaged']>[0], seeded: Provisioned | null): Promise<Vm> {
    await rename(input.staging, dir);
    await this.d.pool.adopt(id).catch(async (e: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw e;
    });
    const now = new Date().toISOString();
    const boot: VmBoot = {};
    if (input.hasKernel) boot.kernel = join(dir, 'kernel');
    if (input.hasInitrd) boot.initrd = join(dir, 'initrd');
    if (input.spec.cmdline !== undefined && input.hasKernel) boot.cmdline = input.spec.cmdline;
    const vm: Vm = {
      id, name: input.name, state: 'stopped', cpu: input.spec.cpu, memoryMB: input.spec.memoryMB, diskGB: input.spec.diskGB, distro: null,
      boot, network: seeded?.network ?? input.spec.network, order: this.d.vms.nextOrder(), createdAt: now, updatedAt: now, startedAt: null, accelerator: null,
      lastError: null, cloudInit: seeded?.summary ?? null,
    };
    try {
      this.d.transact(() => {
        this.d.vms.insert(vm, seeded?.record ?? null);
        input.within(vm);
        this.emit('vm.created', vm, { vm, ...input.origin });
      });
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      // Taken meanwhile (the name was checked before the disk work began).
      throw isNameClash(e) ? nameConflict(input.name) : e;
    }
    return vm;
  }

  async update(ref: string, patch: UpdateVmInput): Promise<Vm> {
    const { id } = this.get(ref);
    return this.locks.run(id, 'update', async () => {
      const vm = this.get(id);
      const next: Vm = { ...vm };
      const changes: string[] = [];
      if (patch.name !== undefined && patch.name !== vm.name) {
        this.assertNameFree(patch.name, vm.id);
        next.name = patch.name;
        changes.push('name');
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
      this.d.transact(() => {
        this.d.vms.update(next);
        this.emit('vm.updated', next, { changes });
      });
      return next;
    });
  }

  async delete(ref: string, force: boolean): Promise<void> {
    const { id } = this.get(ref);
    if (force && this.live.has(id)) await this.forceStop(id).catch(() => undefined);
    await this.locks.run(id, 'delete', async () => {
      const vm = this.get(id);
      if (force && isLive(vm.state)) {
        await this.killNow(vm);
      }
      const current = this.get(id);
      assertCan('delete', current.state, current.name);
      await rm(this.d.layout.vmDir(id), { recursive: true, force: true });
      this.d.transact(() => {
        this.d.vms.delete(id);
        this.d.errors.deleteFor(id);
        this.emit('vm.deleted', current, {});
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

  // ---- lifecycle -----------------------------------------------------------------------------

  async start(ref: string, waitFor?: { console: string; timeoutSeconds: number }): Promise<StartResult> {
    const { id } = this.get(ref);
    // A bad pattern is the caller's mistake: refuse it before anything starts.
    if (waitFor) compileWaitPattern(waitFor.console);
    let fromOffset = 0;
    const vm = await this.locks.run(id, 'start', async () => {
      const vm = this.get(id);
      assertCan('start', vm.state, vm.name);
      fromOffset = await this.d.console.end(vm.id);
      return this.launchLocked(vm, fromOffset, {});
    });
    if (!waitFor) return { vm };
    const matched = await this.d.console.waitFor(vm, waitFor.console, fromOffset, waitFor.timeoutSeconds * 1000);
    return { vm: this.get(id), waitFor: matched };
  }

  /** Starts QEMU for a VM whose lock the caller holds. */
  private async launchLocked(vm: Vm, fromOffset: number, opts: { loadSnapshot?: string }): Promise<Vm> {
    const saved = vm.state === 'suspended' ? await this.savedState(vm.id) : null;
    if (vm.state === 'suspended' && saved === null) {
      throw new DomainError('CONFLICT', `VM '${vm.name}' is suspended but its saved state is missing; force-stop it to discard the suspension`, { state: vm.state });
    }
    const base = this.spec(vm);
    let spec: LaunchSpec = { ...base, ...(opts.loadSnapshot !== undefined ? { loadSnapshot: opts.loadSnapshot } : {}), ...(saved ? { incoming: true } : {}) };
    this.d.vms.setState(vm.id, 'starting');
    let instance: VmInstance;
    try {
      // QEMU gets the top layer's real name, never the VM's link: it reopens files by name, and a clone
      // re-points the link while QEMU runs.
      const disk = await this.d.pool.adopt(vm.id);
      spec = { ...spec, paths: { ...base.paths, disk } };
      instance = await this.d.hypervisor.launch(spec, fromOffset);
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      this.fail(vm, detail, 'operation');
      throw e instanceof DomainError ? e : new DomainError('QEMU_FAILED', detail);
    }
    this.track(vm, instance, Date.now());
    if (saved) return this.resumeSaved(vm, instance, saved, spec);
    return this.transition(vm.id, 'running', { startedAt: new Date().toISOString(), accelerator: spec.accelerator, lastError: null },
      'vm.started', { resumed: false, pid: instance.pid, accelerator: spec.accelerator, ...(opts.loadSnapshot ? { snapshot: opts.loadSnapshot } : {}) });
  }

  /**
   * Feeds the saved RAM and device state into the waiting QEMU, then returns the guest to the run state
   * it had. The state file is consumed: the disk moves on from here, so resuming it twice would corrupt.
   */
  private async resumeSaved(vm: Vm, instance: VmInstance, saved: SavedState, spec: LaunchSpec): Promise<Vm> {
    try {
      await instance.loadState();
      if (saved.runState === 'running') await instance.resume();
    } catch (e) {
      const live = this.live.get(vm.id);
      if (live) { live.expectingExit = 'kill'; await instance.kill(); await live.exitHandled; }
      const detail = `resuming the saved state failed (it is kept for another try): ${errorMessage(e)}`;
      this.d.transact(() => {
        this.d.errors.add(vm.id, 'operation', detail);
        this.d.vms.setState(vm.id, 'suspended');
      });
      throw new DomainError('QEMU_FAILED', detail);
    }
    const paths = this.d.layout.vmPaths(vm.id);
    // Renamed at once (it can never be resumed twice), deleted after answering: unlinking a large file
    // costs tens of milliseconds the caller need not wait for.
    const consumed = this.d.layout.consumedState(vm.id);
    await rename(paths.savedState, consumed);
    await rm(paths.savedStateMeta, { force: true });
    void rm(consumed, { force: true });
    return this.transition(vm.id, saved.runState, { startedAt: new Date().toISOString(), accelerator: spec.accelerator, lastError: null },
      'vm.started', { resumed: true, pid: instance.pid, accelerator: spec.accelerator, savedAt: saved.savedAt });
  }

  /** Saves RAM and device state to disk and ends QEMU; the next start resumes exactly there. */
  async suspend(ref: string): Promise<Vm> {
    const { id } = this.get(ref);
    return this.locks.run(id, 'suspend', async () => {
      const vm = this.get(id);
      assertCan('suspend', vm.state, vm.name);
      const live = this.requireLive(vm);
      const runState = vm.state === 'paused' ? 'paused' : 'running';
      const paths = this.d.layout.vmPaths(id);
      this.d.vms.setState(id, 'suspending');
      try {
        // Frozen first: one pass over RAM instead of chasing a guest that keeps writing.
        if (runState === 'running') await live.instance.pause();
        await writeFile(paths.savedStateMeta, JSON.stringify({ runState, savedAt: new Date().toISOString() }));
        await live.instance.saveState();
      } catch (e) {
        await rm(paths.savedStateMeta, { force: true });
        if (runState === 'running') await live.instance.resume().catch(() => undefined);
        this.d.vms.setState(id, vm.state);
        throw new DomainError('QEMU_FAILED', `suspend of '${vm.name}' failed: ${errorMessage(e)}`);
      }
      live.expectingExit = 'suspend';
      await live.instance.kill();
      await live.exitHandled;
      return this.get(id);
    });
  }

  async suspendStatus(ref: string): Promise<{ suspended: boolean; state: VmState; savedAt: string | null; stateBytes: number | null; runState: 'running' | 'paused' | null }> {
    const vm = this.get(ref);
    const saved = await this.savedState(vm.id);
    return {
      suspended: vm.state === 'suspended', state: vm.state, savedAt: saved?.savedAt ?? null,
      stateBytes: saved?.bytes ?? null, runState: saved?.runState ?? null,
    };
  }

  private async savedState(id: string): Promise<SavedState | null> {
    const paths = this.d.layout.vmPaths(id);
    try {
      const [meta, st] = await Promise.all([readFile(paths.savedStateMeta, 'utf8'), stat(paths.savedState)]);
      const m = JSON.parse(meta) as { runState: 'running' | 'paused'; savedAt: string };
      return { runState: m.runState, savedAt: m.savedAt, bytes: st.size };
    } catch {
      return null;
    }
  }

  /**
   * For the other VM services (snapshots, …): runs `fn` holding the VM's operation lock, with the VM, its
   * live QEMU if any, and the few lifecycle steps such work needs, so no capability is written twice.
   */
  async exclusive<T>(ref: string, operation: string, fn: (ctx: ExclusiveContext) => Promise<T>): Promise<T> {
    const { id } = this.get(ref);
    return this.locks.run(id, operation, async () => {
      const vm = this.get(id);
      const ctx: ExclusiveContext = {
        vm,
        instance: isUp(vm.state) ? this.live.get(id)?.instance ?? null : null,
        launch: async (opts) => this.launchLocked(this.get(id), await this.d.console.end(id), opts),
        setRunState: async (state) => {
          const live = this.requireLive(this.get(id));
          if (state === 'running') await live.instance.resume(); else await live.instance.pause();
          const cur = this.get(id);
          if (cur.state === state) return cur;
          return this.transition(id, state, {}, state === 'running' ? 'vm.resumed' : 'vm.paused', {});
        },
        powerOff: async () => this.killNow(this.get(id)),
      };
      return fn(ctx);
    });
  }

  async stop(ref: string, opts: { timeoutSeconds?: number; force?: boolean } = {}): Promise<Vm> {
    const { id } = this.get(ref);
    const timeoutMs = (opts.timeoutSeconds ?? DEFAULTS.stopTimeoutSeconds) * 1000;
    return this.locks.run(id, 'stop', async () => {
      const vm = this.get(id);
      assertCan('stop', vm.state, vm.name);
      const live = this.requireLive(vm);
      this.d.vms.setState(id, 'stopping');
      live.expectingExit = 'stop';
      try {
        // ACPI needs running vCPUs to be noticed: a paused guest is thawed first.
        if (vm.state === 'paused') await live.instance.resume();
        await live.instance.powerdown();
      } catch (e) {
        live.expectingExit = null;
        this.d.vms.setState(id, vm.state);
        throw new DomainError('QEMU_FAILED', `power-down failed: ${errorMessage(e)}`);
      }
      const gone = (ms: number): Promise<boolean> => Promise.race([live.exitHandled.then(() => true), sleep(ms).then(() => false)]);
      let exited = await gone(Math.min(timeoutMs, ACPI_GRACE_MS));
      if (!exited && timeoutMs > ACPI_GRACE_MS) {
        // Nothing in the guest heard the button (no acpid, a desktop asking its user): its agent can ask the OS itself.
        if (await this.d.guestShutdown?.(id)) this.d.log.info({ vm: vm.name }, 'ACPI power button ignored; asked the guest agent to power off');
        exited = await gone(timeoutMs - ACPI_GRACE_MS);
      }
      if (exited) return this.get(id);
      if (opts.force) {
        live.expectingExit = 'kill';
        await live.instance.kill();
        await live.exitHandled;
        return this.get(id);
      }
      live.expectingExit = null;
      const back = this.d.vms.setState(id, 'running');
      throw new DomainError('TIMEOUT', `guest '${back.name}' did not power off within ${timeoutMs / 1000}s; it is still running (use force)`, { state: back.state });
    });
  }

  /** Not queued behind other operations: cutting power must work while a graceful stop is waiting. */
  async forceStop(ref: string): Promise<Vm> {
    const vm = this.get(ref);
    assertCan('forceStop', vm.state, vm.name);
    if (!this.live.has(vm.id) && vm.state === 'starting') {
      // QEMU is being launched: wait for that (it holds the VM's lock), then cut what it started.
      await this.locks.run(vm.id, 'force-stop', async () => {
        const cur = this.get(vm.id);
        if (cur.state !== 'stopped') await this.killNow(cur);
      });
      return this.get(vm.id);
    }
    await this.killNow(vm);
    return this.get(vm.id);
  }

  private async killNow(vm: Vm): Promise<void> {
    const live = this.live.get(vm.id);
    if (!live) {
      // Nothing runs (error after a crash, a failed start, or a suspension being discarded): only the
      // record needs fixing, and a saved state must not be resumed later over a disk that moved on.
      const paths = this.d.layout.vmPaths(vm.id);
      await Promise.all([rm(paths.savedState, { force: true }), rm(paths.savedStateMeta, { force: true })]);
      this.transition(vm.id, 'stopped', { startedAt: null }, 'vm.stopped', { reason: 'forced' });
      return;
    }
    live.expectingExit = 'kill';
    await live.instance.kill();
    await live.exitHandled;
  }

  async restart(ref: string, opts: { hard?: boolean; timeoutSeconds?: number } = {}): Promise<Vm> {
    const vm = this.get(ref);
    if (opts.hard) {
      return this.locks.run(vm.id, 'restart', async () => {
        const cur = this.get(vm.id);
        assertCan('restart', cur.state, cur.name);
        const live = this.requireLive(cur);
        await live.instance.reset();
        if (cur.state === 'paused') await live.instance.resume();
        live.startedAtMs = Date.now();
        return this.transition(cur.id, 'running', { startedAt: new Date().toISOString() }, 'vm.started', { resumed: false, restarted: true, hard: true });
      });
    }
    // A guest-side reboot needs an agent or a keyboard; power-cycling through ACPI works for any guest.
    assertCan('restart', vm.state, vm.name);
    await this.stop(vm.id, { timeoutSeconds: opts.timeoutSeconds ?? DEFAULTS.stopTimeoutSeconds, force: true });
    return (await this.start(vm.id)).vm;
  }

  async pause(ref: string): Promise<Vm> {
    return this.simpleTransition(ref, 'pause', 'paused', 'vm.paused', (i) => i.pause());
  }

  async resume(ref: string): Promise<Vm> {
    return this.simpleTransition(ref, 'resume', 'running', 'vm.resumed', (i) => i.resume());
  }

  private async simpleTransition(ref: string, action: 'pause' | 'resume', to: VmState, type: EventType, act: (i: VmInstance) => Promise<void>): Promise<Vm> {
    const { id } = this.get(ref);
    return this.locks.run(id, action, async () => {
      const vm = this.get(id);
      assertCan(action, vm.state, vm.name);
      const live = this.requireLive(vm);
      await qemuStep(action, () => act(live.instance));
      return this.transition(id, to, {}, type, {});
    });
  }

  async stopAll(opts: { timeoutSeconds?: number; force?: boolean }): Promise<StopAllResult> {
    const targets = this.d.vms.list().filter((v) => isUp(v.state));
    const results = await Promise.all(targets.map(async (v) => {
      try {
        const after = await this.stop(v.id, opts);
        return { id: v.id, name: v.name, ok: true, state: after.state };
      } catch (e) {
        const err = e instanceof DomainError ? { code: e.code, detail: e.message } : { code: 'INTERNAL', detail: String(e) };
        return { id: v.id, name: v.name, ok: false, state: this.d.vms.get(v.id)?.state ?? v.state, error: err };
      }
    }));
    return { results };
  }

  async runtime(ref: string): Promise<RuntimeInfo> {
    const vm = this.get(ref);
    const live = this.live.get(vm.id);
    if (!live) {
      return { state: vm.state, pid: null, uptimeSeconds: null, cpuPercent: null, rssBytes: null, disk: null, accelerator: vm.accelerator };
    }
    let u = await live.instance.usage();
    let prev = live.cpuSample;
    if (!prev || Date.now() - prev.at > 10_000) {
      // No recent sample: take two a moment apart so the percentage reflects now, not the whole uptime.
      prev = { at: Date.now(), cpu: u.cpuSeconds };
      await sleep(250);
      u = await live.instance.usage();
    }
    const now = Date.now();
    const cpuPercent = now > prev.at ? Math.max(0, ((u.cpuSeconds - prev.cpu) / ((now - prev.at) / 1000)) * 100) : 0;
    live.cpuSample = { at: now, cpu: u.cpuSeconds };
    return {
      state: vm.state, pid: u.pid, uptimeSeconds: Math.round((now - live.startedAtMs) / 1000),
      cpuPercent: Math.round(cpuPercent * 10) / 10, rssBytes: u.rssBytes, disk: u.disk, accelerator: vm.accelerator,
    };
  }

  // ---- console faces that need lifecycle knowledge --------------------------------------------

  /** The running QEMU of a VM, for read-only work that need not wait for other operations (screenshots). */
  liveInstance(ref: string): { vm: Vm; instance: VmInstance } {
    const vm = this.get(ref);
    const live = this.live.get(vm.id);
    if (!live || !isUp(vm.state)) {
      throw new DomainError('INVALID_STATE', `VM '${vm.name}' is ${vm.state}: it has no running display`, { state: vm.state, allowedStates: ['running', 'paused'] });
    }
    return { vm, instance: live.instance };
  }

  /** Records a changed disk size (the disk service grew the image). */
  recordDiskSize(id: string, diskGB: number): Vm {
    return this.d.transact(() => {
      const next: Vm = { ...this.get(id), diskGB, updatedAt: new Date().toISOString() };
      this.d.vms.update(next);
      this.emit('vm.updated', next, { changes: ['diskGB'] });
      return next;
    });
  }

  consoleTarget(ref: string): Vm {
    const vm = this.get(ref);
    assertCan('consoleWrite', vm.state, vm.name);
    return vm;
  }

  // ---- daemon start-up / shutdown ------------------------------------------------------------

  /**
   * Re-adopts every QEMU left running by an earlier daemon and reconciles the rest: a VM recorded as
   * live whose QEMU is gone was not stopped through us, so it is marked error (or stopped when it was
   * only starting/stopping).
   */
  async recover(): Promise<{ adopted: string[]; reconciled: string[] }> {
    const adopted: string[] = [];
    const reconciled: string[] = [];
    for (const vm of this.d.vms.list()) {
      if (!isLive(vm.state)) continue;
      const fromOffset = await this.d.console.end(vm.id);
      const instance = await this.d.hypervisor.adopt(this.spec(vm), fromOffset).catch((e: Error) => {
        this.d.log.warn({ vm: vm.name, err: e.message }, 'could not re-adopt QEMU');
        return null;
      });
      if (instance) {
        const status = await instance.status().catch(() => 'other' as const);
        const state: VmState = status === 'paused' ? 'paused' : 'running';
        await this.relinkToRunningTop(vm, instance);
        this.track(vm, instance, vm.startedAt ? Date.parse(vm.startedAt) : Date.now());
        if (state !== vm.state) this.d.vms.setState(vm.id, state);
        adopted.push(vm.name);
        continue;
      }
      reconciled.push(vm.name);
      if (vm.state === 'suspending' && (await this.savedState(vm.id)) !== null) {
        // The state file is renamed into place only once complete: QEMU ended after the save.
        this.transition(vm.id, 'suspended', { startedAt: null }, 'vm.suspended', { reason: 'reconciled' });
      } else if (vm.state === 'stopping' || vm.state === 'starting' || vm.state === 'suspending') {
        this.transition(vm.id, 'stopped', { startedAt: null }, 'vm.stopped', { reason: 'reconciled' });
      } else {
        this.fail(vm, `QEMU was no longer running when the daemon started (last state: ${vm.state})`, 'qemu');
      }
    }
    return { adopted, reconciled };
  }

  /**
   * A daemon that died in the middle of a live clone may have left the VM's link naming another layer
   * than the one QEMU writes to; QEMU is the truth for a running VM.
   */
  private async relinkToRunningTop(vm: Vm, instance: VmInstance): Promise<void> {
    try {
      const [running, linked] = await Promise.all([instance.diskFile(), this.d.pool.top(vm.id)]);
      if (linked.pooled && running !== linked.path && this.d.pool.holds(running)) {
        await this.d.pool.point(this.d.layout.vmPaths(vm.id).disk, running);
        this.d.log.warn({ vm: vm.name, layer: running }, 'disk link re-pointed at the layer QEMU is using');
      }
    } catch (e) {
      this.d.log.warn({ vm: vm.name, err: errorMessage(e) }, 'could not check the disk layer of a re-adopted VM');
    }
  }

  /** Daemon shutdown: VMs keep running; we only let go of their sockets. */
  detachAll(): void {
    for (const [id, live] of this.live) {
      live.instance.detach();
      this.d.console.detach(id);
    }
    this.live.clear();
  }

  liveCount(): number {
    return this.live.size;
  }

  // ---- internals -----------------------------------------------------------------------------

  private spec(vm: Vm): LaunchSpec {
    return { vm, paths: this.d.layout.vmPaths(vm.id), accelerator: this.d.hypervisor.accelerator };
  }

  private requireLive(vm: Vm): Live {
    const live = this.live.get(vm.id);
    if (!live) throw new DomainError('INVALID_STATE', `VM '${vm.name}' has no running QEMU (state ${vm.state})`, { state: vm.state });
    return live;
  }

  private track(vm: Vm, instance: VmInstance, startedAtMs: number): void {
    const live: Live = { instance, startedAtMs, expectingExit: null, exitHandled: Promise.resolve(), cpuSample: null };
    live.exitHandled = instance.exited.then((info) => this.onExit(vm.id, live, info));
    instance.onEvent((e) => this.onInstanceEvent(vm.id, e));
    this.live.set(vm.id, live);
    this.d.console.attach(vm, instance.serial);
  }

  /** QMP events change state only when no operation is steering the VM (it sets the state itself). */
  private onInstanceEvent(id: string, e: InstanceEvent): void {
    const vm = this.d.vms.get(id);
    if (!vm) return;
    if (e.kind === 'panicked') {
      this.d.errors.add(id, 'guest', `guest panicked: ${e.detail}`);
      return;
    }
    if (this.locks.isBusy(id)) return;
    if (e.kind === 'paused' && vm.state === 'running') {
      this.transition(id, 'paused', {}, 'vm.paused', { reason: 'qemu' });
    } else if (e.kind === 'resumed' && vm.state === 'paused') {
      this.transition(id, 'running', {}, 'vm.resumed', { reason: 'qemu' });
    }
  }

  private onExit(id: string, live: Live, info: ExitInfo): void {
    if (this.live.get(id) === live) this.live.delete(id);
    this.d.console.detach(id);
    const vm = this.d.vms.get(id);
    if (!vm) return;
    if (live.expectingExit === 'suspend') {
      this.transition(id, 'suspended', { startedAt: null }, 'vm.suspended', {});
      return;
    }
    if (info.clean || live.expectingExit !== null) {
      const reason = live.expectingExit === 'kill' ? 'forced' : info.clean ? info.reason : 'stopped';
      this.transition(id, 'stopped', { startedAt: null }, 'vm.stopped', { reason });
      return;
    }
    const detail = info.stderrTail ? `${info.reason}: ${lastLines(info.stderrTail, 5)}` : info.reason;
    this.fail(vm, detail, 'qemu');
  }

  private fail(vm: Vm, detail: string, source: VmErrorRecord['source']): void {
    this.d.transact(() => {
      this.d.errors.add(vm.id, source, detail);
      this.transition(vm.id, 'error', { lastError: detail, startedAt: null }, 'vm.error', { error: detail });
    });
    this.d.log.warn({ vm: vm.name, detail }, 'VM entered error state');
  }

  /** A state change and its event are one transaction: a crash cannot leave one without the other. */
  private transition(id: string, state: VmState, patch: Partial<Pick<Vm, 'startedAt' | 'lastError' | 'accelerator'>>, type: EventType, data: Record<string, unknown>): Vm {
    return this.d.transact(() => {
      const next = this.d.vms.setState(id, state, patch);
      this.emit(type, next, data);
      return next;
    });
  }

  private emit(type: EventType, vm: Vm, data: Record<string, unknown>): void {
    this.d.events.publish({ type, vmId: vm.id, vmName: vm.name, data: { state: vm.state, ...data } });
  }
}

const sleep = (ms: number): Promise<void> => setTimeout(ms, undefined, { ref: false });

const nameConflict = (name: string): DomainError => new DomainError('CONFLICT', `a VM named '${name}' already exists (choose another name)`, { field: 'name' });
const isNameClash = (e: unknown): boolean => e instanceof Error && /UNIQUE constraint failed: vms.name/.test(e.message);

function lastLines(s: string, n: number): string {
  return s.split('\n').filter((l) => l.trim() !== '').slice(-n).join(' | ');
}
