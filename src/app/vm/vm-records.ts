import { DomainError, notFound } from '../../domain/errors.js';
import type { EventType } from '../../domain/events.js';
import { isUuid, type Vm, type VmState } from '../../domain/vm.js';
import type { EventSink } from '../../ports/event-sink.js';
import type { Logger } from '../../ports/logger.js';
import { VmNameTakenError, type Transact, type VmErrorRecord, type VmErrorRepo, type VmRepo } from '../../ports/repos.js';

export type StatePatch = Partial<Pick<Vm, 'startedAt' | 'lastError' | 'accelerator'>>;

/**
 * The VM records and their events, shared by the parts of the VM service: a state change and its event
 * are one transaction, so a crash cannot leave one without the other.
 */
export class VmRecords {
  constructor(private readonly d: { vms: VmRepo; errors: VmErrorRepo; events: EventSink; transact: Transact; log: Logger }) {}

  /** By id or name; VM_NOT_FOUND otherwise. */
  get(ref: string): Vm {
    const vm = (isUuid(ref) ? this.d.vms.get(ref.toLowerCase()) : undefined) ?? this.d.vms.findByName(ref);
    if (!vm) throw notFound(ref);
    return vm;
  }

  list(): readonly Vm[] {
    return this.d.vms.list();
  }

  /** By id; undefined once deleted. */
  find(id: string): Vm | undefined {
    return this.d.vms.get(id);
  }

  transact<T>(fn: () => T): T {
    return this.d.transact(fn);
  }

  /** Writes a changed VM (its event is the caller's, in the same transaction). */
  update(vm: Vm): void {
    this.d.vms.update(vm);
  }

  /** A state change without an event: the passing states an operation steers through (starting, stopping, …). */
  setState(id: string, state: VmState): Vm {
    return this.d.vms.setState(id, state);
  }

  transition(id: string, state: VmState, patch: StatePatch, type: EventType, data: Record<string, unknown>): Vm {
    return this.transact(() => {
      const next = this.d.vms.setState(id, state, patch);
      this.emit(type, next, data);
      return next;
    });
  }

  /** The VM enters error: the reason is recorded in its error log, its lastError and a `vm.error` event. */
  fail(vm: Vm, detail: string, source: VmErrorRecord['source'], data: Record<string, unknown> = {}): void {
    this.transact(() => {
      this.d.errors.add(vm.id, source, detail);
      this.transition(vm.id, 'error', { lastError: detail, startedAt: null }, 'vm.error', { error: detail, ...data });
    });
    this.d.log.warn({ vm: vm.name, detail }, 'VM entered error state');
  }

  addError(id: string, source: VmErrorRecord['source'], message: string): void {
    this.d.errors.add(id, source, message);
  }

  emit(type: EventType, vm: Vm, data: Record<string, unknown>): void {
    this.d.events.publish({ type, vmId: vm.id, vmName: vm.name, data: { state: vm.state, ...data } });
  }
}

export const nameConflict = (name: string): DomainError => new DomainError('CONFLICT', `a VM named '${name}' already exists (choose another name)`, { field: 'name' });
export const isNameClash = (e: unknown): boolean => e instanceof VmNameTakenError;
