import { canDo, isLive } from '../../domain/vm-state.js';
import type { Vm } from '../../domain/vm.js';
import type { Logger } from '../../ports/logger.js';
import { errorMessage } from '../../util/errors.js';

export interface AutostartDeps {
  /** The VMs in their configured order, and one by id (undefined once deleted). */
  vms: { list(): readonly Vm[]; find(id: string): Vm | undefined };
  /** Starts (or resumes) the VM as `POST /vms/:id/start` does. */
  start(id: string): Promise<unknown>;
  /** Puts the VM in error with this reason: its error log, lastError and a `vm.error` event. */
  fail(vm: Vm, detail: string): void;
  log: Logger;
}

export interface AutostartOutcome {
  started: string[];
  failed: { name: string; error: string }[];
}

/**
 * Brings up the VMs marked autostart when the daemon starts: one at a time in the VMs' order (the order
 * is what the user set with reorder, and one QEMU booting at a time keeps a small host responsive), each
 * one that is not up then — stopped, suspended (resumed from its saved state, as libvirt resumes a
 * managed save) or error (typically: it was running when the host went down). The API answers meanwhile,
 * so each VM is looked at again just before its turn; a failure is the VM's own (error state and event)
 * and never stops the others or the daemon.
 */
export class VmAutostart {
  private closing = false;
  private running: Promise<AutostartOutcome> | null = null;

  constructor(private readonly d: AutostartDeps) {}

  /** Runs once; a second call gets the first run's outcome. */
  run(): Promise<AutostartOutcome> {
    this.running ??= this.startAll();
    return this.running;
  }

  /** Lets the VM being started finish and starts no other (daemon shutdown). */
  async close(): Promise<void> {
    this.closing = true;
    await this.running?.catch(() => undefined);
  }

  private async startAll(): Promise<AutostartOutcome> {
    const outcome: AutostartOutcome = { started: [], failed: [] };
    const ids = this.d.vms.list().filter((vm) => vm.autostart).map((vm) => vm.id);
    for (const id of ids) {
      if (this.closing) break;
      const vm = this.d.vms.find(id);
      // Deleted, switched off, or started by a caller since the list was taken.
      if (!vm?.autostart || !canDo('start', vm.state)) continue;
      try {
        await this.d.start(id);
        outcome.started.push(vm.name);
      } catch (e) {
        const error = errorMessage(e);
        const now = this.d.vms.find(id);
        if (now === undefined || isLive(now.state)) continue; // gone, or up through someone else meanwhile
        outcome.failed.push({ name: vm.name, error });
        // A launch that failed has put the VM in error with this very reason (the start throws what it
        // recorded); anything refused before the launch has not, even on a VM in error from an earlier crash.
        const recorded = now.state === 'error' && now.lastError === error;
        if (!recorded) this.d.fail(now, `autostart failed: ${error}`);
        this.d.log.warn({ vm: vm.name, err: error }, 'autostart failed');
      }
    }
    if (outcome.started.length + outcome.failed.length > 0) this.d.log.info(outcome, 'autostart done');
    return outcome;
  }
}
