import type { GroveEvent } from '../domain/events.js';

/** A registered webhook as stored. The secret never leaves the daemon except as signatures. */
export interface WebhookRecord {
  id: string;
  url: string;
  /** Exact types or `prefix.*`; empty means every event. */
  events: string[];
  secret: string | null;
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
  createdAt: string;
  disabledAt: string | null;
}

/**
 * pending: waiting for its next attempt (or in flight); delivered: a 2xx came back; failed: gave up (24 h
 * passed, or the receiver answered 410); cancelled: the hook was disabled before this one got through.
 */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'cancelled';

export interface DeliveryRecord {
  id: string;
  hookId: string;
  eventId: number;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  /** Times are Unix milliseconds. */
  createdAt: number;
  nextAttemptAt: number | null;
  lastAttemptAt: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
  finishedAt: number | null;
}

/** A delivery as the worker needs it: the row plus the exact bytes to send and where. */
export interface DueDelivery {
  id: string;
  hookId: string;
  eventType: string;
  body: string;
  createdAt: number;
  attempts: number;
  url: string;
  secret: string | null;
}

/** What the app layer needs to manage hooks. */
export interface WebhookRepo {
  insert(h: WebhookRecord): void;
  list(): WebhookRecord[];
  get(id: string): WebhookRecord | undefined;
  delete(id: string): boolean;
  count(): number;
  deliveries(hookId: string, limit: number): DeliveryRecord[];
  deliveryFor(hookId: string, eventId: number): DeliveryRecord | undefined;
  /** Deliveries not finished yet, and when the oldest of them was written (epoch ms). */
  pendingDeliveries(): { count: number; oldestCreatedAt: number | null };
}

/** The durable outbox the delivery worker drains. */
export interface WebhookOutbox {
  /** Enabled hooks, for routing each persisted event. */
  activeHooks(): readonly WebhookRecord[];
  /** Writes one pending delivery, due at `now` (called inside the event's transaction). */
  enqueue(d: { id: string; hookId: string; event: GroveEvent; body: string; now: number }): void;
  /** Hooks with at least one pending delivery due at `now`. */
  hooksWithDue(now: number): string[];
  /** Pending deliveries of one enabled hook due at `now`, oldest first. */
  due(hookId: string, now: number, limit: number): DueDelivery[];
  /** The earliest `next_attempt_at` strictly after `now`, if any. */
  nextDueAfter(now: number): number | undefined;
  markDelivered(id: string, at: number, statusCode: number): void;
  markRetry(id: string, at: number, next: number, statusCode: number | null, error: string): void;
  markFailed(id: string, at: number, statusCode: number | null, error: string): void;
  /** Disables the hook and cancels its other pending deliveries, in one transaction. */
  disableHook(hookId: string, at: number, reason: string): void;
  /** Deletes finished deliveries older than `before`; returns how many. */
  pruneFinished(before: number): number;
}

/** Lets the app layer tell the delivery machinery that a hook is gone (so in-flight attempts stop). */
/** What became of delivery attempts since the daemon started. */
export interface DeliveryOutcomes { delivered: number; retry: number; failed: number }

export interface WebhookDispatcher {
  hookRemoved(hookId: string): void;
  outcomes(): DeliveryOutcomes;
}
