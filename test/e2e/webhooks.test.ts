// Webhooks (SPEC §7) end to end: the real daemon (`bin/grove serve`) delivering to real HTTP receivers on
// 127.0.0.1, signatures checked with the `standardwebhooks` library and a plain HMAC. Retries are made
// fast with GROVE_WEBHOOK_BACKOFF_MS=100 (first retry after ≤ 100 ms, doubling).
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/webhooks.test.js
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { assertOk } from '../helpers/api.js';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';

const SECRET = 'e2e secret 0123456789 !#$%&~';
const ENV = { GROVE_WEBHOOK_BACKOFF_MS: '100' };

interface Hit { path: string; headers: IncomingHttpHeaders; body: string; json: any }

/** A webhook receiver: records every request; per path answers a status, or refuses connections when down. */
class Receiver {
  readonly hits: Hit[] = [];
  readonly status = new Map<string, number>();
  private server: Server | null = null;
  port = 0;

  static async open(): Promise<Receiver> {
    const r = new Receiver();
    await r.up();
    return r;
  }

  url(path: string): string { return `http://127.0.0.1:${this.port}${path}`; }
  at(path: string): Hit[] { return this.hits.filter((h) => h.path === path); }

  async up(): Promise<void> {
    const srv = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        const path = req.url ?? '/';
        const status = this.status.get(path) ?? 200;
        let json: unknown;
        try { json = JSON.parse(body); } catch { json = undefined; }
        this.hits.push({ path, headers: req.headers, body, json });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
      });
    });
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(this.port, '127.0.0.1', () => resolve()); });
    const a = srv.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    this.server = srv;
  }

  /** Closed: connections are refused until up() again. */
  async down(): Promise<void> {
    const srv = this.server;
    this.server = null;
    if (!srv) return;
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  }
}

async function register(d: TestDaemon, body: Record<string, unknown>): Promise<any> {
  return assertOk(await d.call('POST', '/webhooks', body), 201, `register ${JSON.stringify(body)}`);
}

/** Standard Webhooks and X-Nemeton-Secret both verify; a wrong secret does not. */
function assertSigned(h: Hit, secret: string): void {
  const headers = h.headers as Record<string, string>;
  assert.equal(headers['webhook-id'], headers['x-nemeton-delivery']);
  assert.match(headers['webhook-timestamp'] ?? '', /^\d+$/);
  assert.deepEqual(new Webhook(secret, { format: 'raw' }).verify(h.body, headers), JSON.parse(h.body));
  assert.throws(() => new Webhook(`${secret}-wrong`, { format: 'raw' }).verify(h.body, headers));
  const hex = createHmac('sha256', Buffer.from(secret, 'utf8')).update(h.body, 'utf8').digest('hex');
  assert.equal(headers['x-nemeton-secret'], `sha256=${hex}`);
  assert.notEqual(headers['x-nemeton-secret'], `sha256=${createHmac('sha256', 'wrong-secret-0123456789').update(h.body).digest('hex')}`);
}

function assertDeliveryHeaders(h: Hit): void {
  assert.equal(h.headers['content-type'], 'application/json');
  assert.equal(h.headers['x-nemeton-event'], h.json?.type, 'X-Nemeton-Event names the body type');
  assert.match(String(h.headers['x-nemeton-delivery']), /^[0-9a-f-]{36}$/);
}

/** Every event id got through, and each event kept one delivery id across its attempts. */
function assertStableIds(hits: Hit[]): Map<number, string> {
  const byEvent = new Map<number, string>();
  for (const h of hits) {
    const id = String(h.headers['x-nemeton-delivery']);
    const prev = byEvent.get(h.json.id);
    if (prev !== undefined) assert.equal(id, prev, `event ${h.json.id}: delivery id changed between attempts`);
    byEvent.set(h.json.id, id);
  }
  return byEvent;
}

describe('webhooks against real receivers', () => {
  let d: TestDaemon;
  let rx: Receiver;
  const extra: Receiver[] = [];

  before(async () => {
    d = await startDaemon({ env: ENV });
    rx = await Receiver.open();
  });

  after(async () => {
    await d?.cleanup();
    for (const r of [rx, ...extra]) await r?.down();
  });

  it('validates registrations, never returns the secret, 404s unknown ids', async () => {
    const bad: [unknown, string][] = [
      [{ url: 'ftp://127.0.0.1/x' }, 'url'], [{ url: 'http://u:p@127.0.0.1/x' }, 'url'], [{ url: '/relative' }, 'url'],
      [{ url: `http://127.0.0.1/${'a'.repeat(2100)}` }, 'url'],
      [{ url: rx.url('/x'), events: ['vm.nope'] }, 'events'], [{ url: rx.url('/x'), secret: 'short' }, 'secret'],
      [{ url: rx.url('/x'), secret: 'non-ascii-secret-☃-0123' }, 'secret'],
      [{ url: rx.url('/x'), nope: 1 }, 'nope'], [{}, 'url'],
    ];
    for (const [body, field] of bad) {
      const r = await d.call('POST', '/webhooks', body);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 100));
      assert.match(String(r.headers.get('content-type')), /application\/problem\+json/);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
      assert.match(JSON.stringify(r.body), new RegExp(field), `${field} named in ${JSON.stringify(r.body)}`);
    }
    const h = await register(d, { url: rx.url('/v'), events: ['vm.*'], secret: SECRET, description: 'validation' });
    assert.equal(h.hasSecret, true);
    assert.equal(h.enabled, true);
    assert.deepEqual(h.events, ['vm.*']);
    const listed = assertOk(await d.call('GET', '/webhooks'), 200, 'list');
    assert.ok(listed.some((x: any) => x.id === h.id));
    for (const body of [JSON.stringify(h), JSON.stringify(listed), JSON.stringify(assertOk(await d.call('GET', `/webhooks/${h.id}`), 200, 'get'))]) {
      assert.ok(!body.includes(SECRET) && !body.includes('"secret"'), 'the secret is never returned');
    }
    for (const [m, p] of [['GET', ''], ['DELETE', ''], ['POST', '/test'], ['GET', '/deliveries']] as const) {
      const r = await d.call(m, `/webhooks/00000000-0000-4000-8000-000000000000${p}`);
      assert.equal(r.status, 404, `${m} ${p}`);
      assert.equal(r.body.code, 'NOT_FOUND');
      assert.match(r.body.detail, /no webhook with id '00000000-0000-4000-8000-000000000000'/);
    }
    assertOk(await d.call('DELETE', `/webhooks/${h.id}`), 204, 'delete');
    assert.equal((await d.call('GET', `/webhooks/${h.id}`)).status, 404);
    const doc = (await d.call('GET', '/openapi.json')).body;
    for (const p of ['/api/v1/webhooks', '/api/v1/webhooks/{id}', '/api/v1/webhooks/{id}/test', '/api/v1/webhooks/{id}/deliveries']) assert.ok(doc.paths[p], `${p} in OpenAPI`);
  });

  it('delivers signed events to matching hooks only; webhook.test reaches the named hook only', async () => {
    const all = await register(d, { url: rx.url('/all'), secret: SECRET });
    const vmStar = await register(d, { url: rx.url('/vm'), events: ['vm.*'] });
    const exact = await register(d, { url: rx.url('/exact'), events: ['vm.started', 'vm.stopped'], secret: SECRET });
    const vm = await createGuestVm(d, 'wh-filters');
    assertOk(await d.call('PATCH', '/vms/wh-filters', { cpu: 2 }), 200, 'patch');
    assertOk(await d.call('POST', '/vms/wh-filters/start'), 200, 'start');
    assertOk(await d.call('POST', '/vms/wh-filters/force-stop'), 200, 'force-stop');
    const test = assertOk(await d.call('POST', `/webhooks/${exact.id}/test`), 202, 'test');
    assertOk(await d.call('DELETE', '/vms/wh-filters'), 204, 'delete vm');

    const lastType = (path: string, type: string) => () => rx.at(path).some((h) => h.json?.type === type && (h.json.vmId === vm.id || type === 'webhook.test'));
    await waitFor('vm.deleted at /all', async () => lastType('/all', 'vm.deleted')());
    await waitFor('vm.deleted at /vm', async () => lastType('/vm', 'vm.deleted')());
    await waitFor('webhook.test at /exact', async () => lastType('/exact', 'webhook.test')());
    await waitFor('vm.stopped at /exact', async () => lastType('/exact', 'vm.stopped')());

    const types = (path: string) => [...new Set(rx.at(path).filter((h) => h.json?.vmId === vm.id).map((h) => h.json.type as string))].sort();
    assert.deepEqual(types('/all'), ['vm.created', 'vm.deleted', 'vm.started', 'vm.stopped', 'vm.updated']);
    assert.deepEqual(types('/vm'), ['vm.created', 'vm.deleted', 'vm.started', 'vm.stopped', 'vm.updated']);
    assert.deepEqual(types('/exact'), ['vm.started', 'vm.stopped']);
    // The test delivery went to its hook only, and to no hook whose filter would otherwise take it.
    const testHits = rx.hits.filter((h) => h.json?.type === 'webhook.test');
    assert.deepEqual([...new Set(testHits.map((h) => h.path))], ['/exact']);
    const th = testHits.find((h) => h.json.id === test.eventId)!;
    assert.equal(th.headers['x-nemeton-delivery'], test.deliveryId);
    assert.equal(th.json.data.webhookId, exact.id);

    for (const h of [...rx.at('/all'), ...rx.at('/exact')]) { assertDeliveryHeaders(h); assertSigned(h, SECRET); }
    for (const h of rx.at('/vm')) {
      assertDeliveryHeaders(h);
      for (const k of ['x-nemeton-secret', 'webhook-signature', 'webhook-id', 'webhook-timestamp']) assert.equal(h.headers[k], undefined, `${k} without a secret`);
    }
    // One event, one envelope: the same bytes at every hook, with the envelope's fields only.
    const created = rx.at('/all').find((h) => h.json.type === 'vm.created' && h.json.vmId === vm.id)!;
    assert.equal(rx.at('/vm').find((h) => h.json.id === created.json.id)!.body, created.body);
    assert.deepEqual(Object.keys(created.json), ['id', 'type', 'timestamp', 'vmId', 'vmName', 'data']);
    assert.equal(created.json.vmName, 'wh-filters');

    const del = assertOk(await d.call('GET', `/webhooks/${exact.id}/deliveries`), 200, 'deliveries').deliveries;
    assert.equal(del.length, 3);
    for (const x of del) {
      assert.equal(x.status, 'delivered');
      assert.equal(x.attempts, 1);
      assert.equal(x.lastStatusCode, 200);
      assert.equal(x.nextAttemptAt, null);
    }
    assert.ok(del.some((x: any) => x.id === test.deliveryId && x.eventType === 'webhook.test'));
    for (const h of [all, vmStar, exact]) assertOk(await d.call('DELETE', `/webhooks/${h.id}`), 204, 'delete hook');
  });

  it('receiver refusing connections, then answering 500, then 200: every event arrives, delivery ids stable', async () => {
    const flaky = await Receiver.open();
    extra.push(flaky);
    await flaky.down();
    const hook = await register(d, { url: flaky.url('/f'), secret: SECRET });
    await createGuestVm(d, 'wh-flaky');
    for (let cpu = 2; cpu <= 6; cpu++) assertOk(await d.call('PATCH', '/vms/wh-flaky', { cpu }), 200, 'patch');
    const test = assertOk(await d.call('POST', `/webhooks/${hook.id}/test`), 202, 'test');
    const expected = 7; // vm.created, 5 × vm.updated, webhook.test

    const deliveries = async () => assertOk(await d.call('GET', `/webhooks/${hook.id}/deliveries`), 200, 'deliveries').deliveries as any[];
    await waitFor('retries after connection refused', async () => {
      const ds = await deliveries();
      return ds.length === expected && ds.every((x) => x.status === 'pending' && x.attempts >= 2 && x.lastStatusCode === null && /ECONNREFUSED/.test(x.lastError) && x.nextAttemptAt);
    });
    flaky.status.set('/f', 500);
    await flaky.up();
    await waitFor('a 500 recorded', async () => (await deliveries()).some((x) => x.lastStatusCode === 500 && x.status === 'pending' && x.lastError === 'HTTP 500'));
    flaky.status.set('/f', 200);
    await waitFor('all delivered', async () => (await deliveries()).every((x) => x.status === 'delivered'), 60_000);

    const byEvent = assertStableIds(flaky.at('/f'));
    const got = [...byEvent.keys()];
    assert.equal(new Set(got).size, expected, `events received: ${got.join(',')}`);
    assert.equal(byEvent.get(test.eventId), test.deliveryId);
    for (const h of flaky.at('/f')) { assertDeliveryHeaders(h); assertSigned(h, SECRET); }
    const ds = await deliveries();
    for (const x of ds) assert.equal(x.id, byEvent.get(x.eventId), 'the id in /deliveries is the id sent');
    assert.ok(ds.every((x) => x.attempts >= 3), 'refused, 500, then 200');
    assertOk(await d.call('DELETE', '/vms/wh-flaky'), 204, 'delete vm');
    assertOk(await d.call('DELETE', `/webhooks/${hook.id}`), 204, 'delete hook');
  });

  it('410 Gone disables the hook and stops its deliveries', async () => {
    rx.status.set('/gone', 410);
    const hook = await register(d, { url: rx.url('/gone') });
    const test = assertOk(await d.call('POST', `/webhooks/${hook.id}/test`), 202, 'test');
    await waitFor('hook disabled', async () => assertOk(await d.call('GET', `/webhooks/${hook.id}`), 200, 'get').enabled === false);
    const h = assertOk(await d.call('GET', `/webhooks/${hook.id}`), 200, 'get');
    assert.match(h.disabledReason, /410/);
    const ds = assertOk(await d.call('GET', `/webhooks/${hook.id}/deliveries`), 200, 'deliveries').deliveries;
    assert.equal(ds.length, 1);
    assert.equal(ds[0].id, test.deliveryId);
    assert.equal(ds[0].status, 'failed');
    assert.equal(ds[0].lastStatusCode, 410);
    // Later events are not queued for it, and a test is refused.
    await createGuestVm(d, 'wh-gone');
    assert.equal(assertOk(await d.call('GET', `/webhooks/${hook.id}/deliveries`), 200, 'deliveries').deliveries.length, 1);
    const r = await d.call('POST', `/webhooks/${hook.id}/test`);
    assert.equal(r.status, 409);
    assert.equal(r.body.code, 'INVALID_STATE');
    assert.equal(rx.at('/gone').length, 1);
    assertOk(await d.call('DELETE', '/vms/wh-gone'), 204, 'delete vm');
  });

  it('deliveries pending when the daemon is SIGKILLed arrive after restart', async () => {
    const late = await Receiver.open();
    extra.push(late);
    await late.down();
    const hook = await register(d, { url: late.url('/k'), events: ['vm.created', 'vm.deleted', 'webhook.test'], secret: SECRET });
    const vm = await createGuestVm(d, 'wh-kill');
    assertOk(await d.call('DELETE', '/vms/wh-kill'), 204, 'delete vm');
    const test = assertOk(await d.call('POST', `/webhooks/${hook.id}/test`), 202, 'test');
    await waitFor('attempts failing', async () => {
      const ds = assertOk(await d.call('GET', `/webhooks/${hook.id}/deliveries`), 200, 'deliveries').deliveries as any[];
      return ds.length === 3 && ds.every((x) => x.status === 'pending' && x.attempts >= 1);
    });
    await d.stop('SIGKILL');
    await late.up();
    d = await startDaemon({ dataDir: d.dataDir, port: d.port, env: ENV });
    await waitFor('all three after restart', async () => new Set(late.at('/k').map((h) => h.json.id)).size === 3);
    const byEvent = assertStableIds(late.at('/k'));
    assert.equal(byEvent.get(test.eventId), test.deliveryId);
    assert.deepEqual(late.at('/k').filter((h) => h.json.vmId === vm.id).map((h) => h.json.type).sort(), ['vm.created', 'vm.deleted']);
    for (const h of late.at('/k')) { assertDeliveryHeaders(h); assertSigned(h, SECRET); }
    await waitFor('recorded as delivered', async () => (assertOk(await d.call('GET', `/webhooks/${hook.id}/deliveries`), 200, 'deliveries').deliveries as any[]).every((x) => x.status === 'delivered'));
  });
});
