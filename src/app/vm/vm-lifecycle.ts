import { setTimeout } from 'node:timers/promises';
import { DomainError } from '../../domain/errors.js';
import type { EventType } from '../../domain/events.js';
import { assertCan, isUp } from '../../domain/vm-state.js';
import type { Vm, VmState } from '../../domain/vm.js';
import type { DiskPool } from '../../ports/disk-pool.js';
import type { Hypervisor, LaunchSpec, ResourceUsage, VmInstance } from '../../ports/hypervisor.js';
import type { VmFiles } from '../../ports/vm-files.js';
import type { Logger } from '../../ports/logger.js';
import { errorMessage } from '../../util/errors.js';
import type { ConsoleService, WaitResult } from '../console/console-service.js';
import { compileWaitPattern } from '../console/wait-pattern.js';
import type { DataLayout } from '../layout.js';
import type { OperationLocks, VmOperation } from '../operation-lock.js';
import { qemuStep } from '../qemu-step.js';
import type { VmRecords } from './vm-records.js';
import type { VmSupervisor } from './vm-supervisor.js';
import type { ResumableState, VmSuspension } from './vm-suspension.js';

export const LIFECYCLE_DEFAULTS = { stopTimeoutSeconds: 60 } as const;

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

export interface LifecycleDeps {
  records: VmRecords;
  locks: OperationLocks;
  supervisor: VmSupervisor;
  suspension: VmSuspension;
  hypervisor: Hypervisor;
  pool: DiskPool;
  console: ConsoleService;
  files: VmFiles;
  layout: DataLayout;
  log: Logger;
  /** Asks the guest OS to power off through its agent; false when no agent answers (late-bound: the agent service needs the VM service). */
  guestShutdown?: (vmId: string) => Promise<boolean>;
}

/** How long a graceful stop waits for the ACPI button to be heard before it also asks the guest agent. */
const ACPI_GRACE_MS = 10_000;

/**
 * The runtime controller (Firecracker's split: this part acts on defined VMs): start, stop, pause, resume,
 * restart, and the exclusive access other services use. Each action holds the VM's operation lock and
 * sets the states it steers through; what QEMU then does on its own is the supervisor's to record.
 */
export class VmLifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  async start(ref: string, waitFor?: { console: string; timeoutSeconds: number }): Promise<StartResult> {
    const { records } = this.d;
    const { id } = records.get(ref);
    // A bad pattern is the caller's mistake: refuse it before anything starts.
    if (waitFor) compileWaitPattern(waitFor.console);
    let fromOffset = 0;
    const vm = await this.d.locks.run(id, 'start', async () => {
      const vm = records.get(id);
      assertCan('start', vm.state, vm.name);
      fromOffset = await this.d.console.end(vm.id);
      return this.launchLocked(vm, fromOffset, {});
    });
    if (!waitFor) return { vm };
    const matched = await this.d.console.waitFor(vm, waitFor.console, fromOffset, waitFor.timeoutSeconds * 1000);
    return { vm: records.get(id), waitFor: matched };
  }

  /** Starts QEMU for a VM whose lock the caller holds. */
  private async launchLocked(vm: Vm, fromOffset: number, opts: { loadSnapshot?: string }): Promise<Vm> {
    const { records, supervisor } = this.d;
    const saved: ResumableState | null = vm.state === 'suspended' ? await this.d.suspension.toResume(vm) : null;
    const base = supervisor.spec(vm);
    if (!(await this.d.files.exists(base.paths.disk))) {
      // A VM whose distro image never arrived (its provisioning failed) has nothing to boot.
      throw new DomainError('CONFLICT', `VM '${vm.name}' has no disk${vm.distro ? ` (the image of '${vm.distro}' never arrived)` : ''}; delete it and create it again`, { state: vm.state });
    }
    let spec: LaunchSpec = { ...base, ...(opts.loadSnapshot !== undefined ? { loadSnapshot: opts.loadSnapshot } : {}), ...(saved ? { incoming: true } : {}) };
    records.setState(vm.id, 'starting');
    let instance: VmInstance;
    try {
      // QEMU gets the top layer's real name, never the VM's link: it reopens files by name, and a clone
      // re-points the link while QEMU runs.
      const disk = await this.d.pool.adopt(vm.id);
      spec = { ...spec, paths: { ...base.paths, disk } };
      instance = await this.d.hypervisor.launch(spec, fromOffset);
    } catch (e) {
      const detail = errorMessage(e);
      records.fail(vm, detail, 'operation');
      throw e instanceof DomainError ? e : new DomainError('QEMU_FAILED', detail);
    }
    supervisor.track(vm, instance, Date.now());
    if (saved) return this.d.suspension.resumeInto(vm, instance, saved, spec);
    return records.transition(vm.id, 'running', { startedAt: new Date().toISOString(), accelerator: spec.accelerator, lastError: null },
      'vm.started', { resumed: false, pid: instance.pid, accelerator: spec.accelerator, ...(opts.loadSnapshot ? { snapshot: opts.loadSnapshot } : {}) });
  }

  /**
   * For the other VM services (snapshots, …): runs `fn` holding the VM's operation lock, with the VM, its
   * live QEMU if any, and the few lifecycle steps such work needs, so no capability is written twice.
   */
  async exclusive<T>(ref: string, operation: VmOperation, fn: (ctx: ExclusiveContext) => Promise<T>): Promise<T> {
    const { records, supervisor } = this.d;
    const { id } = records.get(ref);
    return this.d.locks.run(id, operation, async () => {
      const vm = records.get(id);
      const ctx: ExclusiveContext = {
        vm,
        instance: isUp(vm.state) ? supervisor.get(id)?.instance ?? null : null,
        launch: async (opts) => this.launchLocked(records.get(id), await this.d.console.end(id), opts),
        setRunState: async (state) => {
          const live = supervisor.require(records.get(id));
          if (state === 'running') await live.instance.resume(); else await live.instance.pause();
          const cur = records.get(id);
          if (cur.state === state) return cur;
          return records.transition(id, state, {}, state === 'running' ? 'vm.resumed' : 'vm.paused', {});
        },
        powerOff: async () => this.killNow(records.get(id)),
      };
      return fn(ctx);
    });
  }

  async stop(ref: string, opts: { timeoutSeconds?: number; force?: boolean } = {}): Promise<Vm> {
    const { records, supervisor } = this.d;
    const { id } = records.get(ref);
    const timeoutMs = (opts.timeoutSeconds ?? LIFECYCLE_DEFAULTS.stopTimeoutSeconds) * 1000;
    return this.d.locks.run(id, 'stop', async () => {
      const vm = records.get(id);
      assertCan('stop', vm.state, vm.name);
      const live = supervisor.require(vm);
      records.setState(id, 'stopping');
      live.expectingExit = 'stop';
      try {
        // ACPI needs running vCPUs to be noticed: a paused guest is thawed first.
        if (vm.state === 'paused') await live.instance.resume();
        await live.instance.powerdown();
      } catch (e) {
        live.expectingExit = null;
        records.setState(id, vm.state);
        throw new DomainError('QEMU_FAILED', `power-down failed: ${errorMessage(e)}`);
      }
      const gone = (ms: number): Promise<boolean> => Promise.race([live.exitHandled.then(() => true), sleep(ms).then(() => false)]);
      let exited = await gone(Math.min(timeoutMs, ACPI_GRACE_MS));
      if (!exited && timeoutMs > ACPI_GRACE_MS) {
        // Nothing in the guest heard the button (no acpid, a desktop asking its user): its agent can ask the OS itself.
        if (await this.d.guestShutdown?.(id)) this.d.log.info({ vm: vm.name }, 'ACPI power button ignored; asked the guest agent to power off');
        exited = await gone(timeoutMs - ACPI_GRACE_MS);
      }
      if (exited) return records.get(id);
      if (opts.force) {
        await supervisor.end(live, 'kill');
        return records.get(id);
      }
      live.expectingExit = null;
      const back = records.setState(id, 'running');
      throw new DomainError('TIMEOUT', `guest '${back.name}' did not power off within ${timeoutMs / 1000}s; it is still running (use force)`, { state: back.state });
    });
  }

  /** Not queued behind other operations: cutting power must work while a graceful stop is waiting. */
  async forceStop(ref: string): Promise<Vm> {
    const { records, supervisor } = this.d;
    const vm = records.get(ref);
    assertCan('forceStop', vm.state, vm.name);
    if (!supervisor.get(vm.id) && vm.state === 'starting') {
      // QEMU is being launched: wait for that (it holds the VM's lock), then cut what it started.
      await this.d.locks.run(vm.id, 'force-stop', async () => {
        const cur = records.get(vm.id);
        if (cur.state !== 'stopped') await this.killNow(cur);
      });
      return records.get(vm.id);
    }
    await this.killNow(vm);
    return records.get(vm.id);
  }

  /** Cuts power now, whatever runs; with nothing running only the record (and a suspension) is cleared. */
  async killNow(vm: Vm): Promise<void> {
    const live = this.d.supervisor.get(vm.id);
    if (!live) {
      // Nothing runs (error after a crash, a failed start, or a suspension being discarded): only the
      // record needs fixing, and a saved state must not be resumed later over a disk that moved on.
      await this.d.suspension.discard(vm.id);
      this.d.records.transition(vm.id, 'stopped', { startedAt: null }, 'vm.stopped', { reason: 'forced' });
      return;
    }
    await this.d.supervisor.end(live, 'kill');
  }

  async restart(ref: string, opts: { hard?: boolean; timeoutSeconds?: number } = {}): Promise<Vm> {
    const { records, supervisor } = this.d;
    const vm = records.get(ref);
    if (opts.hard) {
      return this.d.locks.run(vm.id, 'restart', async () => {
        const cur = records.get(vm.id);
        assertCan('restart', cur.state, cur.name);
        const live = supervisor.require(cur);
        await live.instance.reset();
        if (cur.state === 'paused') await live.instance.resume();
        live.startedAtMs = Date.now();
        return records.transition(cur.id, 'running', { startedAt: new Date().toISOString() }, 'vm.started', { resumed: false, restarted: true, hard: true });
      });
    }
    // A guest-side reboot needs an agent or a keyboard; power-cycling through ACPI works for any guest.
    assertCan('restart', vm.state, vm.name);
    await this.stop(vm.id, { timeoutSeconds: opts.timeoutSeconds ?? LIFECYCLE_DEFAULTS.stopTimeoutSeconds, force: true });
    return (await this.start(vm.id)).vm;
  }

  async pause(ref: string): Promise<Vm> {
    return this.simpleTransition(ref, 'pause', 'paused', 'vm.paused', (i) => i.pause());
  }

  async resume(ref: string): Promise<Vm> {
    return this.simpleTransition(ref, 'resume', 'running', 'vm.resumed', (i) => i.resume());
  }

  private async simpleTransition(ref: string, action: 'pause' | 'resume', to: VmState, type: EventType, act: (i: VmInstance) => Promise<void>): Promise<Vm> {
    const { records, supervisor } = this.d;
    const { id } = records.get(ref);
    return this.d.locks.run(id, action, async () => {
      const vm = records.get(id);
      assertCan(action, vm.state, vm.name);
      const live = supervisor.require(vm);
      await qemuStep(action, () => act(live.instance));
      return records.transition(id, to, {}, type, {});
    });
  }

  async stopAll(opts: { timeoutSeconds?: number; force?: boolean }): Promise<StopAllResult> {
    const { records } = this.d;
    const targets = records.list().filter((v) => isUp(v.state));
    const results = await Promise.all(targets.map(async (v) => {
      try {
        const after = await this.stop(v.id, opts);
        return { id: v.id, name: v.name, ok: true, state: after.state };
      } catch (e) {
        const err = e instanceof DomainError ? { code: e.code, detail: e.message } : { code: 'INTERNAL', detail: String(e) };
        return { id: v.id, name: v.name, ok: false, state: records.find(v.id)?.state ?? v.state, error: err };
      }
    }));
    return { results };
  }

  async runtime(ref: string): Promise<RuntimeInfo> {
    const vm = this.d.records.get(ref);
    const live = this.d.supervisor.get(vm.id);
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

  /** A VM's QEMU counters as they are now (no CPU sampling pause, for scrapes); null when none runs. */
  async usage(ref: string): Promise<{ usage: ResourceUsage; uptimeSeconds: number } | null> {
    const live = this.d.supervisor.get(this.d.records.get(ref).id);
    if (!live) return null;
    const usage = await live.instance.usage();
    return { usage, uptimeSeconds: (Date.now() - live.startedAtMs) / 1000 };
  }

  /** Whether a QEMU of this VM is being watched (it may be on its way out). */
  hasQemu(id: string): boolean {
    return this.d.supervisor.get(id) !== undefined;
  }

  /** The running QEMU of a VM, for read-only work that need not wait for other operations (screenshots). */
  liveInstance(ref: string): { vm: Vm; instance: VmInstance } {
    const vm = this.d.records.get(ref);
    const live = this.d.supervisor.get(vm.id);
    if (!live || !isUp(vm.state)) {
      throw new DomainError('INVALID_STATE', `VM '${vm.name}' is ${vm.state}: it has no running display`, { state: vm.state, allowedStates: ['running', 'paused'] });
    }
    return { vm, instance: live.instance };
  }

  consoleTarget(ref: string): Vm {
    const vm = this.d.records.get(ref);
    assertCan('consoleWrite', vm.state, vm.name);
    return vm;
  }
}

const sleep = (ms: number): Promise<void> => setTimeout(ms, undefined, { ref: false });
