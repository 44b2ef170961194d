import { setTimeout as delay } from 'node:timers/promises';
import { DomainError } from '../../domain/errors.js';
import type { ReadinessCheck } from '../../domain/readiness.js';
import type { Vm } from '../../domain/vm.js';

export type { ReadinessCheck } from '../../domain/readiness.js';

/** One attempt at a check: what proves readiness (e.g. the SSH greeting), or a reason it is not there yet. */
export type ProbeOutcome = { ready: true; detail: string } | { ready: false; reason: string };

export interface ReadinessProbe {
  attempt(vm: Vm, timeoutMs: number): Promise<ProbeOutcome>;
}

export interface Ready {
  check: ReadinessCheck;
  /** From the start of the wait to the successful attempt. */
  elapsedMs: number;
  attempts: number;
  /** What answered, e.g. `SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`. */
  detail: string;
}

/**
 * Back-off between attempts: quick at first (a guest that is nearly up), then once a second. An attempt
 * gets at most 2 s: before the guest's network is up QEMU's forward accepts and then holds the connection
 * silent, so a long attempt would only delay noticing the server once it is there.
 */
const FIRST_PAUSE_MS = 250;
const MAX_PAUSE_MS = 1000;
const MAX_ATTEMPT_MS = 2000;

/**
 * Waits until a running guest passes a readiness check: attempts retried with back-off, bounded by the
 * timeout, and given up at once when the VM stops running meanwhile (crashed, powered off, deleted).
 */
export class GuestReadiness {
  constructor(private readonly d: { probes: Record<ReadinessCheck, ReadinessProbe>; vms: { get(ref: string): Vm } }) {}

  async wait(ref: string, check: ReadinessCheck, timeoutMs: number): Promise<Ready> {
    const started = performance.now();
    const deadline = started + timeoutMs;
    const probe = this.d.probes[check];
    let pause = FIRST_PAUSE_MS;
    let attempts = 0;
    let lastReason = 'no attempt finished';
    for (;;) {
      const vm = this.d.vms.get(ref);
      if (vm.state !== 'running') {
        throw new DomainError('INVALID_STATE', `VM '${vm.name}' is ${vm.state} while waiting for ${check}${vm.lastError ? `: ${vm.lastError}` : ''}`, { state: vm.state });
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new DomainError('TIMEOUT', `VM '${vm.name}' is running but ${check} did not answer within ${+(timeoutMs / 1000).toFixed(1)} s (last: ${lastReason}); it keeps running`,
          { check, attempts });
      }
      attempts++;
      const outcome = await probe.attempt(vm, Math.min(MAX_ATTEMPT_MS, left));
      if (outcome.ready) return { check, elapsedMs: Math.round(performance.now() - started), attempts, detail: outcome.detail };
      lastReason = outcome.reason;
      await delay(Math.min(pause, Math.max(0, deadline - performance.now())), undefined, { ref: false });
      pause = Math.min(MAX_PAUSE_MS, pause * 2);
    }
  }
}
