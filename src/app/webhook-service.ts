import { randomUUID } from 'node:crypto';
import { DomainError } from '../domain/errors.js';
import { invalid } from '../domain/errors.js';
import { WEBHOOKS_MAX, checkWebhookEvents, checkWebhookSecret, checkWebhookUrl } from '../domain/webhook.js';
import type { EventSink } from '../ports/event-sink.js';
import type { DeliveryOutcomes, DeliveryRecord, DeliveryStatus, WebhookDispatcher, WebhookRecord, WebhookRepo } from '../ports/webhooks.js';

/** A hook as callers see it: never the secret, only whether there is one. */
export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  hasSecret: boolean;
  enabled: boolean;
  disabledReason: string | null;
  createdAt: string;
  disabledAt: string | null;
}

export interface DeliveryView {
  id: string;
  eventId: number;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  finishedAt: string | null;
}

export interface RegisterWebhook {
  url: string;
  events?: string[];
  secret?: string;
  description?: string;
}

export interface TestDelivery {
  webhookId: string;
  eventId: number;
  deliveryId: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function view(h: WebhookRecord): WebhookView {
  return {
    id: h.id, url: h.url, events: h.events, description: h.description, hasSecret: h.secret !== null, enabled: h.enabled,
    disabledReason: h.disabledReason, createdAt: h.createdAt, disabledAt: h.disabledAt,
  };
}

function deliveryView(d: DeliveryRecord): DeliveryView {
  return {
    id: d.id, eventId: d.eventId, eventType: d.eventType, status: d.status, attempts: d.attempts, lastStatusCode: d.lastStatusCode,
    lastError: d.lastError, createdAt: iso(d.createdAt)!, lastAttemptAt: iso(d.lastAttemptAt), nextAttemptAt: iso(d.nextAttemptAt),
    finishedAt: iso(d.finishedAt),
  };
}

const hookNotFound = (id: string): DomainError => new DomainError('NOT_FOUND', `no webhook with id '${id}'`, { webhook: id });

/**
 * Webhook registrations and their delivery history. Delivery itself is not here: the outbox writer routes
 * each persisted event to the matching hooks, and the worker sends them (src/webhooks/).
 */
export class WebhookService {
  constructor(private readonly d: { repo: WebhookRepo; events: EventSink; dispatcher?: WebhookDispatcher }) {}

  register(input: RegisterWebhook): WebhookView {
    const url = checkWebhookUrl(input.url);
    const events = checkWebhookEvents(input.events ?? []);
    const secret = input.secret === undefined ? null : checkWebhookSecret(input.secret);
    const description = input.description?.trim() || null;
    if (this.d.repo.count() >= WEBHOOKS_MAX) throw invalid(`at most ${WEBHOOKS_MAX} webhooks can be registered; delete one first`);
    const rec: WebhookRecord = {
      id: randomUUID(), url, events, secret, description, enabled: true, disabledReason: null, createdAt: new Date().toISOString(), disabledAt: null,
    };
    this.d.repo.insert(rec);
    return view(rec);
  }

  /** Attempts by outcome since the daemon started, and the backlog: for /metrics. */
  deliveryStats(now = Date.now()): { outcomes: DeliveryOutcomes; pending: number; oldestPendingAgeSeconds: number | null } {
    const p = this.d.repo.pendingDeliveries();
    return {
      outcomes: this.d.dispatcher?.outcomes() ?? { delivered: 0, retry: 0, failed: 0 },
      pending: p.count,
      oldestPendingAgeSeconds: p.oldestCreatedAt === null ? null : Math.max(0, (now - p.oldestCreatedAt) / 1000),
    };
  }

  list(): WebhookView[] {
    return this.d.repo.list().map(view);
  }

  get(id: string): WebhookView {
    return view(this.hook(id));
  }

  delete(id: string): void {
    if (!this.d.repo.delete(id)) throw hookNotFound(id);
    this.d.dispatcher?.hookRemoved(id);
  }

  /**
   * Publishes a `webhook.test` event naming this hook; the outbox routes such an event to the named hook
   * only (whatever its filter), and the worker sends it like any other delivery.
   */
  test(id: string): TestDelivery {
    const h = this.hook(id);
    if (!h.enabled) {
      throw new DomainError('INVALID_STATE', `webhook '${id}' is disabled (${h.disabledReason ?? 'no reason recorded'}); register it again to receive deliveries`, { state: 'disabled' });
    }
    const ev = this.d.events.publish({ type: 'webhook.test', data: { webhookId: id, url: h.url, message: 'Test delivery from Grove' } });
    const delivery = this.d.repo.deliveryFor(id, ev.id);
    if (!delivery) throw new DomainError('INTERNAL', `webhook.test event ${ev.id} produced no delivery for webhook '${id}'`);
    return { webhookId: id, eventId: ev.id, deliveryId: delivery.id };
  }

  deliveries(id: string, limit: number): DeliveryView[] {
    this.hook(id);
    return this.d.repo.deliveries(id, limit).map(deliveryView);
  }

  private hook(id: string): WebhookRecord {
    const h = this.d.repo.get(id);
    if (!h) throw hookNotFound(id);
    return h;
  }
}
