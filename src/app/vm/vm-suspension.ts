import { DomainError } from '../../domain/errors.js';
import { SAVED_STATE_VERSION, resumable, type SavedStateMeta } from '../../domain/saved-state.js';
import { assertCan } from '../../domain/vm-state.js';
import { USER_NET_FIRST_ADDRESS, type Vm, type VmState } from '../../domain/vm.js';
import type { LaunchSpec, VmInstance } from '../../ports/hypervisor.js';
import type { SavedStateFiles } from '../../ports/vm-files.js';
import { errorMessage } from '../../util/errors.js';
import type { DataLayout } from '../layout.js';
import type { OperationLocks } from '../operation-lock.js';
import type { VmRecords } from './vm-records.js';
import type { VmSupervisor } from './vm-supervisor.js';

export interface SuspendStatus {
  suspended: boolean;
  state: VmState;
  savedAt: string | null;
  stateBytes: number | null;
  runState: 'running' | 'paused' | null;
}

/** A saved state this Grove can resume. */
export type ResumableState = SavedStateMeta & { bytes: number };

/**
 * Suspend to disk: RAM and device state saved into the VM's folder and QEMU ended; the next start feeds
 * it back (through `resumeInto`) and the guest goes on where it was.
 */
export class VmSuspension {
  constructor(private readonly d: {
    records: VmRecords; locks: OperationLocks; supervisor: VmSupervisor; savedStates: SavedStateFiles; layout: DataLayout;
  }) {}

  async suspend(ref: string): Promise<Vm> {
    const { records, supervisor, savedStates } = this.d;
    const { id } = records.get(ref);
    return this.d.locks.run(id, 'suspend', async () => {
      const vm = records.get(id);
      assertCan('suspend', vm.state, vm.name);
      const live = supervisor.require(vm);
      const runState = vm.state === 'paused' ? 'paused' : 'running';
      const paths = this.d.layout.vmPaths(id);
      records.setState(id, 'suspending');
      try {
        // Frozen first: one pass over RAM instead of chasing a guest that keeps writing.
        if (runState === 'running') await live.instance.pause();
        const forwardsTo = vm.network.portForwards.length > 0 ? await live.instance.portForwardTarget() : null;
        await savedStates.writeMeta(paths, {
          version: SAVED_STATE_VERSION, runState, savedAt: new Date().toISOString(),
          ...(forwardsTo !== null && forwardsTo !== USER_NET_FIRST_ADDRESS ? { forwardsTo } : {}),
        });
        await live.instance.saveState();
      } catch (e) {
        await savedStates.discardMeta(paths);
        if (runState === 'running') await live.instance.resume().catch(() => undefined);
        records.setState(id, vm.state);
        throw new DomainError('QEMU_FAILED', `suspend of '${vm.name}' failed: ${errorMessage(e)}`);
      }
      await supervisor.end(live, 'suspend');
      return records.get(id);
    });
  }

  async status(ref: string): Promise<SuspendStatus> {
    const vm = this.d.records.get(ref);
    const saved = await this.d.savedStates.read(this.d.layout.vmPaths(vm.id));
    return {
      suspended: vm.state === 'suspended', state: vm.state, savedAt: saved?.savedAt ?? null,
      stateBytes: saved?.bytes ?? null, runState: saved?.runState ?? null,
    };
  }

  /** The saved state a start of this suspended VM resumes; CONFLICT when it is missing or of a newer Grove. */
  async toResume(vm: Vm): Promise<ResumableState> {
    const saved = await this.d.savedStates.read(this.d.layout.vmPaths(vm.id));
    if (saved === null) {
      throw new DomainError('CONFLICT', `VM '${vm.name}' is suspended but its saved state is missing; force-stop it to discard the suspension`, { state: vm.state });
    }
    return resumable(saved, vm.name);
  }

  /**
   * Feeds the saved RAM and device state into the waiting QEMU, then returns the guest to the run state
   * it had. The state file is consumed: the disk moves on from here, so resuming it twice would corrupt.
   */
  async resumeInto(vm: Vm, instance: VmInstance, saved: ResumableState, spec: LaunchSpec): Promise<Vm> {
    const { records, supervisor } = this.d;
    try {
      await instance.loadState();
      // Before the guest runs again: its network state came back with the lease, the forwards did not.
      if (saved.forwardsTo !== undefined) await instance.retargetPortForwards(vm.network.portForwards, saved.forwardsTo);
      if (saved.runState === 'running') await instance.resume();
    } catch (e) {
      const live = supervisor.get(vm.id);
      if (live) await supervisor.end(live, 'kill');
      const detail = `resuming the saved state failed (it is kept for another try): ${errorMessage(e)}`;
      records.transact(() => {
        records.addError(vm.id, 'operation', detail);
        records.setState(vm.id, 'suspended');
      });
      throw new DomainError('QEMU_FAILED', detail);
    }
    await this.d.savedStates.consume(this.d.layout.vmPaths(vm.id), this.d.layout.consumedState(vm.id));
    return records.transition(vm.id, saved.runState, { startedAt: new Date().toISOString(), accelerator: spec.accelerator, lastError: null },
      'vm.started', { resumed: true, pid: instance.pid, accelerator: spec.accelerator, savedAt: saved.savedAt });
  }

  /** A suspension discarded (force-stop): the state must not be resumed later over a disk that moved on. */
  async discard(id: string): Promise<void> {
    await this.d.savedStates.discard(this.d.layout.vmPaths(id));
  }
}
