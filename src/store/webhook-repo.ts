import type { GroveEvent } from '../domain/events.js';
import type { DeliveryRecord, DeliveryStatus, DueDelivery, WebhookOutbox, WebhookRecord, WebhookRepo } from '../ports/webhooks.js';
import type { Db } from './db.js';

interface HookRow {
  id: string; url: string; events: string; secret: string | null; description: string | null; enabled: number;
  disabled_reason: string | null; created_at: string; disabled_at: string | null;
}

interface DeliveryRow {
  id: string; hook_id: string; event_id: number; event_type: string; status: string; attempts: number; created_at: number;
  next_attempt_at: number | null; last_attempt_at: number | null; last_status_code: number | null; last_error: string | null;
  finished_at: number | null;
}

const hookFromRow = (r: HookRow): WebhookRecord => ({
  id: r.id, url: r.url, events: JSON.parse(r.events) as string[], secret: r.secret, description: r.description,
  enabled: r.enabled === 1, disabledReason: r.disabled_reason, createdAt: r.created_at, disabledAt: r.disabled_at,
});

const deliveryFromRow = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id, hookId: r.hook_id, eventId: r.event_id, eventType: r.event_type, status: r.status as DeliveryStatus,
  attempts: r.attempts, createdAt: r.created_at, nextAttemptAt: r.next_attempt_at, lastAttemptAt: r.last_attempt_at,
  lastStatusCode: r.last_status_code, lastError: r.last_error, finishedAt: r.finished_at,
});

const DELIVERY_COLS = 'id, hook_id, event_id, event_type, status, attempts, created_at, next_attempt_at, last_attempt_at, last_status_code, last_error, finished_at';

/**
 * Hooks and their delivery outbox. The enabled hooks are cached (every persisted event is routed against
 * them, inside its transaction); all hook changes go through this class, which drops the cache.
 */
export class SqliteWebhookRepo implements WebhookRepo, WebhookOutbox {
  private readonly q;
  private active: WebhookRecord[] | null = null;

  constructor(private readonly db: Db) {
    this.q = {
      insert: db.prepare('INSERT INTO webhooks (id, url, events, secret, description, enabled, disabled_reason, created_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      list: db.prepare<[], HookRow>('SELECT * FROM webhooks ORDER BY created_at, id'),
      get: db.prepare<[string], HookRow>('SELECT * FROM webhooks WHERE id = ?'),
      del: db.prepare<[string]>('DELETE FROM webhooks WHERE id = ?'),
      count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM webhooks'),
      enabled: db.prepare<[], HookRow>('SELECT * FROM webhooks WHERE enabled = 1 ORDER BY created_at, id'),
      disable: db.prepare<[string, string, string]>('UPDATE webhooks SET enabled = 0, disabled_at = ?, disabled_reason = ? WHERE id = ?'),
      cancelPending: db.prepare<[number, string]>("UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, finished_at = ?, last_error = COALESCE(last_error, 'hook disabled') WHERE hook_id = ? AND status = 'pending'"),
      enqueue: db.prepare('INSERT OR IGNORE INTO webhook_deliveries (id, hook_id, event_id, event_type, body, status, attempts, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, \'pending\', 0, ?, ?)'),
      deliveries: db.prepare<[string, number], DeliveryRow>(`SELECT ${DELIVERY_COLS} FROM webhook_deliveries WHERE hook_id = ? ORDER BY created_at DESC, event_id DESC LIMIT ?`),
      deliveryFor: db.prepare<[string, number], DeliveryRow>(`SELECT ${DELIVERY_COLS} FROM webhook_deliveries WHERE hook_id = ? AND event_id = ?`),
      hooksWithDue: db.prepare<[number], { hook_id: string }>("SELECT DISTINCT hook_id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?"),
      due: db.prepare<[string, number, number], { id: string; hook_id: string; event_type: string; body: string; created_at: number; attempts: number; url: string; secret: string | null }>(
        `SELECT d.id, d.hook_id, d.event_type, d.body, d.created_at, d.attempts, h.url, h.secret
           FROM webhook_deliveries d JOIN webhooks h ON h.id = d.hook_id
          WHERE d.hook_id = ? AND d.status = 'pending' AND d.next_attempt_at <= ? AND h.enabled = 1
          ORDER BY d.next_attempt_at, d.event_id LIMIT ?`),
      nextDue: db.prepare<[number], { t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > ?"),
      delivered: db.prepare<[number, number, number, string]>("UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_attempt_at = ?, finished_at = ?, last_status_code = ?, last_error = NULL, next_attempt_at = NULL WHERE id = ? AND status = 'pending'"),
      retry: db.prepare<[number, number, number | null, string, string]>("UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, last_status_code = ?, last_error = ? WHERE id = ? AND status = 'pending'"),
      failed: db.prepare<[number, number, number | null, string, string]>("UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, last_attempt_at = ?, finished_at = ?, next_attempt_at = NULL, last_status_code = ?, last_error = ? WHERE id = ? AND status = 'pending'"),
      pending: db.prepare<[], { n: number; oldest: number | null }>("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries WHERE status = 'pending'"),
      prune: db.prepare<[number]>("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < ?"),
    };
  }

  insert(h: WebhookRecord): void {
    this.q.insert.run(h.id, h.url, JSON.stringify(h.events), h.secret, h.description, h.enabled ? 1 : 0, h.disabledReason, h.createdAt, h.disabledAt);
    this.active = null;
  }

  list(): WebhookRecord[] { return this.q.list.all().map(hookFromRow); }
  get(id: string): WebhookRecord | undefined { const r = this.q.get.get(id); return r ? hookFromRow(r) : undefined; }
  count(): number { return this.q.count.get()!.n; }

  delete(id: string): boolean {
    // Its deliveries go with it (ON DELETE CASCADE).
    const n = this.q.del.run(id).changes;
    this.active = null;
    return n > 0;
  }

  deliveries(hookId: string, limit: number): DeliveryRecord[] { return this.q.deliveries.all(hookId, limit).map(deliveryFromRow); }
  deliveryFor(hookId: string, eventId: number): DeliveryRecord | undefined {
    const r = this.q.deliveryFor.get(hookId, eventId);
    return r ? deliveryFromRow(r) : undefined;
  }

  pendingDeliveries(): { count: number; oldestCreatedAt: number | null } {
    const r = this.q.pending.get()!;
    return { count: r.n, oldestCreatedAt: r.oldest };
  }

  activeHooks(): readonly WebhookRecord[] {
    this.active ??= this.q.enabled.all().map(hookFromRow);
    return this.active;
  }

  enqueue(d: { id: string; hookId: string; event: GroveEvent; body: string; now: number }): void {
    this.q.enqueue.run(d.id, d.hookId, d.event.id, d.event.type, d.body, d.now, d.now);
  }

  hooksWithDue(now: number): string[] { return this.q.hooksWithDue.all(now).map((r) => r.hook_id); }

  due(hookId: string, now: number, limit: number): DueDelivery[] {
    return this.q.due.all(hookId, now, limit).map((r) => ({
      id: r.id, hookId: r.hook_id, eventType: r.event_type, body: r.body, createdAt: r.created_at, attempts: r.attempts, url: r.url, secret: r.secret,
    }));
  }

  nextDueAfter(now: number): number | undefined { return this.q.nextDue.get(now)?.t ?? undefined; }

  markDelivered(id: string, at: number, statusCode: number): void { this.q.delivered.run(at, at, statusCode, id); }
  markRetry(id: string, at: number, next: number, statusCode: number | null, error: string): void { this.q.retry.run(at, next, statusCode, error.slice(0, 500), id); }
  markFailed(id: string, at: number, statusCode: number | null, error: string): void { this.q.failed.run(at, at, statusCode, error.slice(0, 500), id); }

  disableHook(hookId: string, at: number, reason: string): void {
    this.db.transaction(() => {
      this.q.disable.run(new Date(at).toISOString(), reason, hookId);
      this.q.cancelPending.run(at, hookId);
    })();
    this.active = null;
  }

  pruneFinished(before: number): number { return this.q.prune.run(before).changes; }
}
