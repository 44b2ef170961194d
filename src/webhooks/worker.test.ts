import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { migrate } from '../store/db.js';
import { SqliteEventRepo } from '../store/event-repo.js';
import { SqliteWebhookRepo } from '../store/webhook-repo.js';
import { EventBus } from '../events/event-bus.js';
import { retryPolicy } from './backoff.js';
import { OutboxWriter } from './outbox.js';
import { DeliveryWorker } from './worker.js';

const silent = { info() {}, warn() {}, error() {} };

/** A receiver whose answer is decided per request by `handle`. */
async function receiver(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const a = srv.address();
  return { url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/`, close: () => { srv.closeAllConnections(); srv.close(); } };
}

function setup(opts: { perHook?: number; timeoutMs?: number } = {}) {
  const db = new Database(':memory:');
  migrate(db);
  const repo = new SqliteWebhookRepo(db);
  const bus = new EventBus(new SqliteEventRepo(db), { retention: 1000 }, (fn) => db.transaction(fn)());
  const worker = new DeliveryWorker(repo, {
    policy: retryPolicy(20), attemptTimeoutMs: opts.timeoutMs ?? 5000, perHookConcurrency: opts.perHook ?? 4, maxInFlight: 32,
    keepFinishedMs: 60_000, log: silent,
  });
  bus.onPersist(new OutboxWriter(repo, worker.wake).write);
  const addHook = (id: string, url: string, events: string[] = []) => repo.insert({
    id, url, events, secret: null, description: null, enabled: true, disabledReason: null, createdAt: new Date().toISOString(), disabledAt: null,
  });
  return { db, repo, bus, worker, addHook };
}

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('delivery worker (in-memory SQLite, loopback receiver)', () => {
  const cleanups: (() => unknown)[] = [];
  // Newest first: receiver, then worker, then database.
  after(async () => { for (const c of cleanups.reverse()) await c(); });

  it('keeps at most perHookConcurrency deliveries of one hook in flight, and delivers all', async () => {
    let inFlight = 0;
    let peak = 0;
    const got = new Set<number>();
    const rx = await receiver((_req, res, body) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => { inFlight--; got.add(JSON.parse(body).id); res.end('ok'); }, 20);
    });
    const s = setup({ perHook: 3 });
    cleanups.push(() => s.db.close(), () => s.worker.close(), rx.close);
    s.addHook('h1', rx.url);
    s.worker.start();
    const ids = Array.from({ length: 15 }, () => s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'v', data: {} }).id);
    await until('all delivered', () => ids.every((id) => got.has(id)));
    assert.ok(peak <= 3, `peak ${peak}`);
    assert.ok(peak >= 2, `peak ${peak}: deliveries ran in parallel`);
    await until('recorded', () => s.repo.deliveries('h1', 100).every((d) => d.status === 'delivered'));
    assert.equal(s.repo.deliveries('h1', 100).length, 15);
  });

  it('retries failures with the same delivery id until 2xx; a timeout counts as a failure', async () => {
    const seen: { delivery: string; ts: string }[] = [];
    let n = 0;
    const rx = await receiver((req, res) => {
      n++;
      seen.push({ delivery: String(req.headers['x-nemeton-delivery']), ts: String(req.headers['webhook-timestamp']) });
      if (n === 1) return; // no answer: the 150 ms attempt timeout fires
      res.statusCode = n < 4 ? 503 : 204;
      res.end();
    });
    const s = setup({ timeoutMs: 150 });
    cleanups.push(() => s.db.close(), () => s.worker.close(), rx.close);
    s.addHook('h2', rx.url);
    s.worker.start();
    s.bus.publish({ type: 'vm.started', vmId: 'v', vmName: 'v', data: {} });
    await until('delivered', () => s.repo.deliveries('h2', 10)[0]?.status === 'delivered');
    const d = s.repo.deliveries('h2', 10)[0]!;
    assert.equal(d.attempts, 4);
    assert.equal(d.lastStatusCode, 204);
    assert.equal(new Set(seen.map((x) => x.delivery)).size, 1);
    assert.equal(seen[0]!.delivery, d.id);
  });

  it('410 disables the hook, cancels its pending deliveries, and later events are not queued', async () => {
    const rx = await receiver((_req, res) => { res.statusCode = 410; res.end(); });
    const s = setup({ perHook: 1 });
    cleanups.push(() => s.db.close(), () => s.worker.close(), rx.close);
    s.addHook('h3', rx.url);
    s.worker.start();
    for (let i = 0; i < 3; i++) s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'v', data: {} });
    await until('disabled', () => s.repo.get('h3')?.enabled === false);
    const ds = s.repo.deliveries('h3', 10);
    assert.deepEqual(ds.map((d) => d.status).sort(), ['cancelled', 'cancelled', 'failed']);
    s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'v', data: {} });
    assert.equal(s.repo.deliveries('h3', 10).length, 3);
  });

  it('close() aborts attempts in flight and leaves them pending for the next run', async () => {
    const rx = await receiver(() => { /* never answers */ });
    const s = setup();
    cleanups.push(() => s.db.close(), rx.close);
    s.addHook('h4', rx.url);
    s.worker.start();
    s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'v', data: {} });
    await until('in flight', () => s.worker.inFlightCount() === 1);
    await s.worker.close();
    const d = s.repo.deliveries('h4', 10)[0]!;
    assert.equal(d.status, 'pending');
    assert.equal(d.attempts, 0);
    assert.deepEqual(s.repo.due('h4', Date.now(), 10).map((x) => x.id), [d.id]);
  });
});
