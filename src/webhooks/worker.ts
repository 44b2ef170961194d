import type { Logger } from '../ports/logger.js';
import type { DeliveryOutcomes, DueDelivery, WebhookDispatcher, WebhookOutbox } from '../ports/webhooks.js';
import { nextAttemptAt, type RetryPolicy } from './backoff.js';
import { deliveryHeaders } from './signer.js';


export interface DeliveryWorkerOptions {
  policy: RetryPolicy;
  /** Each attempt is aborted after this long and counts as a failure. */
  attemptTimeoutMs: number;
  perHookConcurrency: number;
  maxInFlight: number;
  /** Finished deliveries are kept this long for `/deliveries`, then pruned. */
  keepFinishedMs: number;
  log: Logger;
  clock?: () => number;
}

export const WORKER_DEFAULTS = { attemptTimeoutMs: 10_000, perHookConcurrency: 4, maxInFlight: 32, keepFinishedMs: 7 * 24 * 60 * 60 * 1000 };

/** Why an attempt was aborted without counting: the daemon is closing, or the hook was deleted/disabled. */
const NOT_COUNTED = Symbol('not counted');

interface InFlight {
  hookId: string;
  ctl: AbortController;
  done: Promise<void>;
}

/**
 * Drains the outbox. Never runs in a request path: it is woken (on a later tick) when rows are written,
 * and otherwise sleeps until the earliest pending attempt is due. Per hook at most `perHookConcurrency`
 * deliveries are in flight; ordering between deliveries is not kept. A delivery stays `pending` in the
 * database while in flight, so a crash mid-attempt means it is sent again after restart (at-least-once).
 */
export class DeliveryWorker implements WebhookDispatcher {
  private readonly clock: () => number;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly perHook = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private wakeQueued = false;
  private started = false;
  private closed = false;
  private lastPrune = 0;
  private readonly counted: DeliveryOutcomes = { delivered: 0, retry: 0, failed: 0 };

  constructor(private readonly outbox: WebhookOutbox, private readonly o: DeliveryWorkerOptions) {
    this.clock = o.clock ?? Date.now;
  }

  outcomes(): DeliveryOutcomes { return { ...this.counted }; }

  /** Picks up whatever is pending (deliveries left by a previous run included). */
  start(): void {
    this.started = true;
    this.wake();
  }

  readonly wake = (): void => {
    if (!this.started || this.closed || this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.pump();
    });
  };

  hookRemoved(hookId: string): void {
    for (const f of this.inFlight.values()) if (f.hookId === hookId) f.ctl.abort(NOT_COUNTED);
  }

  inFlightCount(): number {
    return this.inFlight.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = [...this.inFlight.values()];
    for (const f of pending) f.ctl.abort(NOT_COUNTED);
    await Promise.allSettled(pending.map((f) => f.done));
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.clock();
    try {
      for (const hookId of this.outbox.hooksWithDue(now)) {
        if (this.inFlight.size >= this.o.maxInFlight) break;
        const busy = this.perHook.get(hookId) ?? 0;
        if (busy >= this.o.perHookConcurrency) continue;
        // In-flight rows are still pending and due: ask for enough to skip past them.
        for (const d of this.outbox.due(hookId, now, this.o.perHookConcurrency + busy)) {
          if ((this.perHook.get(hookId) ?? 0) >= this.o.perHookConcurrency || this.inFlight.size >= this.o.maxInFlight) break;
          if (!this.inFlight.has(d.id)) this.launch(d);
        }
      }
      if (now - this.lastPrune > 60 * 60 * 1000) {
        this.lastPrune = now;
        this.outbox.pruneFinished(now - this.o.keepFinishedMs);
      }
      this.sleepUntilNextDue(now);
    } catch (err) {
      this.o.log.error({ err }, 'webhook worker: reading the outbox failed; trying again in 1 s');
      this.sleepUntil(now + 1000);
    }
  }

  /** Rows due now but not started (limits reached) are picked up when an attempt finishes, not by the timer. */
  private sleepUntilNextDue(now: number): void {
    const next = this.outbox.nextDueAfter(now);
    if (next === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    } else {
      this.sleepUntil(next);
    }
  }

  private sleepUntil(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    // Node timers take at most 2^31-1 ms; a later wake simply re-reads the outbox.
    this.timer = setTimeout(this.wake, Math.min(Math.max(0, at - this.clock()), 2 ** 31 - 1));
    this.timer.unref();
  }

  private launch(d: DueDelivery): void {
    const ctl = new AbortController();
    this.perHook.set(d.hookId, (this.perHook.get(d.hookId) ?? 0) + 1);
    const done = this.attempt(d, ctl)
      .catch((err: unknown) => { if (!this.closed) this.o.log.error({ err, delivery: d.id }, 'webhook worker: recording an attempt failed'); })
      .finally(() => {
        this.inFlight.delete(d.id);
        const n = (this.perHook.get(d.hookId) ?? 1) - 1;
        if (n <= 0) this.perHook.delete(d.hookId); else this.perHook.set(d.hookId, n);
        this.wake();
      });
    this.inFlight.set(d.id, { hookId: d.hookId, ctl, done });
  }

  private async attempt(d: DueDelivery, ctl: AbortController): Promise<void> {
    const headers = deliveryHeaders({ deliveryId: d.id, eventType: d.eventType, body: d.body, secret: d.secret, timestamp: Math.floor(this.clock() / 1000) });
    const timeout = setTimeout(() => ctl.abort(new Error(`no answer within ${this.o.attemptTimeoutMs / 1000} s`)), this.o.attemptTimeoutMs);
    let status: number | null = null;
    let error: string | null = null;
    try {
      // Redirects are not followed: a receiver that moved answers 3xx, which is retried (and visible in /deliveries).
      const res = await fetch(d.url, { method: 'POST', headers, body: d.body, signal: ctl.signal, redirect: 'manual' });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      error = describeFailure(err, ctl.signal);
    } finally {
      clearTimeout(timeout);
    }
    // Aborted before any answer (shutdown, hook deleted or disabled): the row stays as it is, pending
    // deliveries go out again later. An answer that did arrive is still recorded, even while closing
    // (close() waits for this before the database is closed), so an acknowledged delivery is not resent.
    if (status === null && ctl.signal.reason === NOT_COUNTED) return;

    const at = this.clock();
    if (status !== null && status >= 200 && status < 300) {
      this.outbox.markDelivered(d.id, at, status);
      this.counted.delivered++;
    } else if (status === 410) {
      this.outbox.markFailed(d.id, at, 410, 'receiver answered 410 Gone; webhook disabled');
      this.counted.failed++;
      this.outbox.disableHook(d.hookId, at, `receiver answered 410 Gone (delivery ${d.id})`);
      this.hookRemoved(d.hookId);
      this.o.log.warn({ webhook: d.hookId, url: d.url }, 'webhook disabled: receiver answered 410 Gone');
    } else {
      const why = error ?? `HTTP ${status}`;
      const next = nextAttemptAt(d.createdAt, d.attempts + 1, at, this.o.policy);
      if (next === null) {
        this.outbox.markFailed(d.id, at, status, `gave up after ${d.attempts + 1} attempts: ${why}`);
        this.counted.failed++;
        this.o.log.warn({ webhook: d.hookId, delivery: d.id, attempts: d.attempts + 1 }, 'webhook delivery failed for good');
      } else {
        this.outbox.markRetry(d.id, at, next, status, why);
        this.counted.retry++;
      }
    }
  }
}

function describeFailure(err: unknown, signal: AbortSignal): string {
  if (signal.aborted && signal.reason instanceof Error) return signal.reason.message;
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  return cause?.message ?? e.message ?? String(err);
}
