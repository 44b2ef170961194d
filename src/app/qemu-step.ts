import { errorMessage } from '../util/errors.js';
import { DomainError } from '../domain/errors.js';

/**
 * Runs one step against QEMU; a failure that is not already a domain error is QEMU's (502 QEMU_FAILED),
 * named after the step so the caller learns what was being done.
 */
export async function qemuStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DomainError) throw e;
    throw new DomainError('QEMU_FAILED', `${what} failed: ${errorMessage(e)}`);
  }
}
