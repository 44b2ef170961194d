import { DomainError } from '../domain/errors.js';

/**
 * Every operation that can hold a VM (Incus's operationlock has a closed set of actions too): a typo is a
 * compile error, and a 409 names an operation a caller can look up.
 */
export const VM_OPERATIONS = [
  'provision', 'update', 'delete', 'start', 'stop', 'force-stop', 'restart', 'pause', 'resume', 'suspend',
  'snapshot', 'restore', 'snapshot-delete', 'snapshot-reconcile', 'clone', 'export', 'disk-resize', 'fork',
] as const;
export type VmOperation = (typeof VM_OPERATIONS)[number];

/** A VM's queue: the promise the next operation waits for, and what is running now. */
interface Queue { tail: Promise<void>; running: VmOperation | null }

/**
 * One queue per VM (Incus's operationlock, Firecracker's single request channel): conflicting operations
 * on a VM never interleave; a later one waits its turn and then re-checks the state it needs. Waiting is
 * bounded so a wedged operation surfaces as a 409 naming it instead of a pile of hung requests; a waiter
 * that gives up leaves the queue as it was (the operations before it still hold the VM).
 */
export class OperationLocks {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly maxWaitMs = 120_000) {}

  isBusy(vmId: string): boolean {
    return this.queues.has(vmId);
  }

  async run<T>(vmId: string, name: VmOperation, fn: () => Promise<T>): Promise<T> {
    let q = this.queues.get(vmId);
    const waits = q !== undefined;
    if (!q) { q = { tail: Promise.resolve(), running: null }; this.queues.set(vmId, q); }
    const queue = q;
    const before = queue.tail;
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = before.then(() => mine);
    queue.tail = tail;
    // The VM is free again once everything queued so far is done, not when this call returns.
    // (Tails only chain releases, which never reject.)
    tail.then(() => { if (this.queues.get(vmId) === queue && queue.tail === tail) this.queues.delete(vmId); }, () => undefined);
    let ran = false;
    try {
      if (waits) await this.waitTurn(before, vmId, queue);
      ran = true;
      queue.running = name;
      return await fn();
    } finally {
      if (ran) queue.running = null;
      release();
    }
  }

  private async waitTurn(before: Promise<void>, vmId: string, queue: Queue): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const holder = queue.running ?? 'another operation';
        reject(new DomainError('OPERATION_IN_PROGRESS', `VM ${vmId} is busy with '${holder}'; gave up waiting after ${this.maxWaitMs / 1000}s`, { operation: holder }));
      }, this.maxWaitMs);
    });
    try {
      await Promise.race([before, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
