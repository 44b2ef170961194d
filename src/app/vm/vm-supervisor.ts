import { DomainError } from '../../domain/errors.js';
import { isLive } from '../../domain/vm-state.js';
import type { Vm, VmState } from '../../domain/vm.js';
import type { DiskPool } from '../../ports/disk-pool.js';
import type { ExitInfo, Hypervisor, InstanceEvent, LaunchSpec, VmInstance } from '../../ports/hypervisor.js';
import type { Logger } from '../../ports/logger.js';
import type { SavedStateFiles } from '../../ports/vm-files.js';
import { errorMessage } from '../../util/errors.js';
import type { ConsoleService } from '../console/console-service.js';
import type { DataLayout } from '../layout.js';
import type { OperationLocks } from '../operation-lock.js';
import type { VmRecords } from './vm-records.js';

/** Why an operation is about to end QEMU: its exit is then that operation's outcome, not a crash. */
export type ExpectedExit = 'stop' | 'kill' | 'suspend';

export interface LiveVm {
  readonly instance: VmInstance;
  startedAtMs: number;
  expectingExit: ExpectedExit | null;
  /** Resolves once the supervisor has recorded the exit (the VM's new state is in the store). */
  exitHandled: Promise<void>;
  cpuSample: { at: number; cpu: number } | null;
}

export interface SupervisorDeps {
  records: VmRecords;
  locks: OperationLocks;
  hypervisor: Hypervisor;
  console: ConsoleService;
  pool: DiskPool;
  layout: DataLayout;
  savedStates: SavedStateFiles;
  log: Logger;
}

/**
 * Keeps track of every live QEMU: its exit, its QMP events, and re-adopting it after a daemon restart.
 * It is the only part that changes a VM's state on its own, and only when no operation holds the VM (an
 * operation sets the states it steers through itself), so what the API says and what QEMU does cannot
 * drift apart.
 */
export class VmSupervisor {
  private readonly live = new Map<string, LiveVm>();

  constructor(private readonly d: SupervisorDeps) {}

  spec(vm: Vm): LaunchSpec {
    return { vm, paths: this.d.layout.vmPaths(vm.id), accelerator: this.d.hypervisor.accelerator };
  }

  get(id: string): LiveVm | undefined {
    return this.live.get(id);
  }

  require(vm: Vm): LiveVm {
    const live = this.live.get(vm.id);
    if (!live) throw new DomainError('INVALID_STATE', `VM '${vm.name}' has no running QEMU (state ${vm.state})`, { state: vm.state });
    return live;
  }

  count(): number {
    return this.live.size;
  }

  /** Watches a QEMU just launched (or re-adopted) for the VM. */
  track(vm: Vm, instance: VmInstance, startedAtMs: number): LiveVm {
    const live: LiveVm = { instance, startedAtMs, expectingExit: null, exitHandled: Promise.resolve(), cpuSample: null };
    live.exitHandled = instance.exited.then((info) => this.onExit(vm.id, live, info));
    instance.onEvent((e) => this.onInstanceEvent(vm.id, e));
    this.live.set(vm.id, live);
    this.d.console.attach(vm, instance.serial);
    return live;
  }

  /** Ends QEMU on an operation's behalf and waits until its exit is recorded. */
  async end(live: LiveVm, why: ExpectedExit): Promise<void> {
    live.expectingExit = why;
    await live.instance.kill();
    await live.exitHandled;
  }

  /**
   * Re-adopts every QEMU left running by an earlier daemon and reconciles the rest: a VM recorded as
   * live whose QEMU is gone was not stopped through us, so it is marked error (or stopped when it was
   * only starting/stopping).
   */
  async recover(): Promise<{ adopted: string[]; reconciled: string[] }> {
    const adopted: string[] = [];
    const reconciled: string[] = [];
    const { records } = this.d;
    for (const vm of records.list()) {
      if (!isLive(vm.state)) continue;
      const fromOffset = await this.d.console.end(vm.id);
      const instance = await this.d.hypervisor.adopt(this.spec(vm), fromOffset).catch((e: unknown) => {
        this.d.log.warn({ vm: vm.name, err: errorMessage(e) }, 'could not re-adopt QEMU');
        return null;
      });
      if (instance) {
        const status = await instance.status().catch(() => 'other' as const);
        const state: VmState = status === 'paused' ? 'paused' : 'running';
        await this.relinkToRunningTop(vm, instance);
        this.track(vm, instance, vm.startedAt ? Date.parse(vm.startedAt) : Date.now());
        if (state !== vm.state) records.setState(vm.id, state);
        adopted.push(vm.name);
        continue;
      }
      reconciled.push(vm.name);
      if (vm.state === 'suspending' && (await this.d.savedStates.read(this.d.layout.vmPaths(vm.id))) !== null) {
        // The state file is renamed into place only once complete: QEMU ended after the save.
        records.transition(vm.id, 'suspended', { startedAt: null }, 'vm.suspended', { reason: 'reconciled' });
      } else if (vm.state === 'stopping' || vm.state === 'starting' || vm.state === 'suspending') {
        records.transition(vm.id, 'stopped', { startedAt: null }, 'vm.stopped', { reason: 'reconciled' });
      } else {
        records.fail(vm, `QEMU was no longer running when the daemon started (last state: ${vm.state})`, 'qemu');
      }
    }
    return { adopted, reconciled };
  }

  /** Daemon shutdown: VMs keep running; we only let go of their sockets. */
  detachAll(): void {
    for (const [id, live] of this.live) {
      live.instance.detach();
      this.d.console.detach(id);
    }
    this.live.clear();
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

  /** QMP events change state only when no operation is steering the VM (it sets the state itself). */
  private onInstanceEvent(id: string, e: InstanceEvent): void {
    const { records } = this.d;
    const vm = records.find(id);
    if (!vm) return;
    if (e.kind === 'panicked') {
      records.addError(id, 'guest', `guest panicked: ${e.detail}`);
      return;
    }
    if (this.d.locks.isBusy(id)) return;
    if (e.kind === 'paused' && vm.state === 'running') {
      records.transition(id, 'paused', {}, 'vm.paused', { reason: 'qemu' });
    } else if (e.kind === 'resumed' && vm.state === 'paused') {
      records.transition(id, 'running', {}, 'vm.resumed', { reason: 'qemu' });
    }
  }

  private onExit(id: string, live: LiveVm, info: ExitInfo): void {
    const { records } = this.d;
    if (this.live.get(id) === live) this.live.delete(id);
    this.d.console.detach(id);
    const vm = records.find(id);
    if (!vm) return;
    if (live.expectingExit === 'suspend') {
      records.transition(id, 'suspended', { startedAt: null }, 'vm.suspended', {});
      return;
    }
    if (info.clean || live.expectingExit !== null) {
      const reason = live.expectingExit === 'kill' ? 'forced' : info.clean ? info.reason : 'stopped';
      records.transition(id, 'stopped', { startedAt: null }, 'vm.stopped', { reason });
      return;
    }
    const detail = info.stderrTail ? `${info.reason}: ${lastLines(info.stderrTail, 5)}` : info.reason;
    records.fail(vm, detail, 'qemu');
  }
}

function lastLines(s: string, n: number): string {
  return s.split('\n').filter((l) => l.trim() !== '').slice(-n).join(' | ');
}
