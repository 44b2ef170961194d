import { randomUUID } from 'node:crypto';
import type { GroveEvent } from '../domain/events.js';
import type { WebhookOutbox } from '../ports/webhooks.js';
import { hooksFor } from './routing.js';

/** The envelope as every delivery of this event carries it, byte for byte on every attempt. */
export function envelopeJson(e: GroveEvent): string {
  return JSON.stringify({
    id: e.id, type: e.type, timestamp: e.timestamp,
    ...(e.vmId !== undefined ? { vmId: e.vmId } : {}),
    ...(e.vmName !== undefined ? { vmName: e.vmName } : {}),
    data: e.data,
  });
}

/**
 * Registered with `bus.onPersist`: runs inside the transaction that stores each event, so an event and
 * its deliveries are committed together (a crash cannot keep one without the other). Each hook × event
 * gets one delivery id (a UUID), which every attempt reuses.
 */
export class OutboxWriter {
  constructor(private readonly outbox: WebhookOutbox, private readonly enqueued: () => void, private readonly clock: () => number = Date.now) {}

  readonly write = (e: GroveEvent): void => {
    const hooks = hooksFor(e, this.outbox.activeHooks());
    if (hooks.length === 0) return;
    const body = envelopeJson(e);
    const now = this.clock();
    for (const h of hooks) this.outbox.enqueue({ id: randomUUID(), hookId: h.id, event: e, body, now });
    // The worker reacts on a later tick, after this transaction has committed.
    this.enqueued();
  };
}
