import type { CloudInitRecord } from '../domain/cloud-init.js';
import type { GroveEvent, NewEvent } from '../domain/events.js';
import type { Vm, VmState } from '../domain/vm.js';
import type { Snapshot } from '../domain/snapshot.js';

/** A VM record's name is another VM's already: what `insert` and `update` throw for it. */
export class VmNameTakenError extends Error {
  constructor(readonly vmName: string) {
    super(`a VM named '${vmName}' already exists`);
    this.name = 'VmNameTakenError';
  }
}

export interface VmRepo {
  list(): readonly Vm[];
  get(id: string): Vm | undefined;
  findByName(name: string): Vm | undefined;
  /**
   * `cloudInit`: the config and seed facts behind `vm.cloudInit` (kept apart: it holds the password hash).
   * Throws VmNameTakenError when the name is taken (also `update`).
   */
  insert(vm: Vm, cloudInit?: CloudInitRecord | null): void;
  cloudInit(id: string): CloudInitRecord | null;
  update(vm: Vm): void;
  setState(id: string, state: VmState, patch?: Partial<Pick<Vm, 'startedAt' | 'lastError' | 'accelerator'>>): Vm;
  delete(id: string): void;
  setOrder(ids: string[]): void;
  nextOrder(): number;
  consoleClearOffset(id: string): number;
  setConsoleClearOffset(id: string, offset: number): void;
}

/** Runs fn in one database transaction (nested calls join the outer one). */
export type Transact = <T>(fn: () => T) => T;

export interface EventRepo {
  append(e: NewEvent): GroveEvent;
  /** Events with id > afterId, oldest first, at most `limit`. */
  since(afterId: number, limit: number): GroveEvent[];
  oldestId(): number | undefined;
  latestId(): number;
  prune(keep: number): number;
}

export interface VmErrorRecord {
  id: number;
  at: string;
  source: 'qemu' | 'operation' | 'guest';
  message: string;
}

export interface VmErrorRepo {
  add(vmId: string, source: VmErrorRecord['source'], message: string): void;
  list(vmId: string, limit: number): VmErrorRecord[];
  deleteFor(vmId: string): void;
}

export interface SnapshotRepo {
  list(vmId: string): Snapshot[];
  all(): Snapshot[];
  get(id: string): Snapshot | undefined;
  findByName(vmId: string, name: string): Snapshot | undefined;
  insert(s: Snapshot): void;
  delete(id: string): void;
}
