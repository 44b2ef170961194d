import { DomainError } from '../domain/errors.js';

interface Slot { name: string; tail: Promise<unknown>; pending: number }

/**
 * One queue per VM (Incus's operationlock, Firecracker's single request channel): conflicting operations
 * on a VM never interleave; a later one waits its turn and then re-checks the state it needs. Waiting is
 * bounded so a wedged operation surfaces as a 409 naming it instead of a pile of hung requests.
 */
export class OperationLocks {
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly maxWaitMs = 120_000) {}

  current(vmId: string): string | null {
    return this.slots.get(vmId)?.name ?? null;
  }

  isBusy(vmId: string): boolean {
    return this.slots.has(vmId);
  }

  async run<T>(vmId: string, name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.slots.get(vmId);
    const before = prev ? prev.tail : Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const slot: Slot = { name, tail: before.then(() => mine, () => mine), pending: (prev?.pending ?? 0) + 1 };
    this.slots.set(vmId, slot);
    try {
      if (prev) await this.waitTurn(before, vmId, prev.name);
      slot.name = name;
      return await fn();
    } finally {
      release();
      if (this.slots.get(vmId) === slot) this.slots.delete(vmId);
    }
  }

  private async waitTurn(before: Promise<unknown>, vmId: string, holder: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DomainError('OPERATION_IN_PROGRESS',
        `VM ${vmId} is busy with '${holder}'; gave up waiting after ${this.maxWaitMs / 1000}s`, { operation: holder })), this.maxWaitMs);
    });
    try {
      await Promise.race([before.catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
