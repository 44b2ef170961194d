import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { EventBus } from '../events/event-bus.js';
import { migrate } from '../store/db.js';
import { SqliteEventRepo } from '../store/event-repo.js';
import { SqliteWebhookRepo } from '../store/webhook-repo.js';
import { OutboxWriter, envelopeJson } from './outbox.js';

function setup() {
  const db = new Database(':memory:');
  migrate(db);
  const repo = new SqliteWebhookRepo(db);
  const bus = new EventBus(new SqliteEventRepo(db), { retention: 1000 }, (fn) => db.transaction(fn)());
  let wakes = 0;
  bus.onPersist(new OutboxWriter(repo, () => { wakes++; }).write);
  const addHook = (id: string, events: string[] = []) => repo.insert({
    id, url: `http://127.0.0.1:9/${id}`, events, secret: null, description: null, enabled: true, disabledReason: null,
    createdAt: new Date().toISOString(), disabledAt: null,
  });
  return { db, repo, bus, addHook, wakes: () => wakes };
}

describe('webhook outbox writer', () => {
  it('the envelope keeps the documented key order and leaves out absent VM fields', () => {
    assert.equal(envelopeJson({ id: 3, type: 'webhook.test', timestamp: 't', data: { a: 1 } }), '{"id":3,"type":"webhook.test","timestamp":"t","data":{"a":1}}');
    assert.deepEqual(Object.keys(JSON.parse(envelopeJson({ data: {}, vmName: 'n', vmId: 'v', timestamp: 't', type: 'vm.created', id: 1 }))),
      ['id', 'type', 'timestamp', 'vmId', 'vmName', 'data']);
  });

  it('writes one delivery per matching hook × event, each with its own id, and wakes the worker', () => {
    const s = setup();
    s.addHook('all');
    s.addHook('vm', ['vm.*']);
    s.addHook('snap', ['snapshot.created']);
    const e = s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'n', data: {} });
    const a = s.repo.deliveryFor('all', e.id)!;
    const v = s.repo.deliveryFor('vm', e.id)!;
    assert.equal(s.repo.deliveryFor('snap', e.id), undefined);
    assert.notEqual(a.id, v.id);
    assert.equal(a.status, 'pending');
    assert.equal(a.attempts, 0);
    assert.equal(s.wakes(), 1);
    const due = s.repo.due('all', Date.now() + 1, 10);
    assert.equal(due[0]!.body, envelopeJson(e));
  });

  it('events matching no hook write nothing and do not wake the worker', () => {
    const s = setup();
    s.addHook('snap', ['snapshot.created']);
    s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'n', data: {} });
    assert.equal(s.wakes(), 0);
    assert.deepEqual(s.repo.deliveries('snap', 10), []);
  });

  it('a delivery row and its event commit together: a failure later in the transaction leaves neither', () => {
    const s = setup();
    s.addHook('all');
    s.bus.onPersist(() => { throw new Error('boom'); });
    assert.throws(() => s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'n', data: {} }), /boom/);
    assert.deepEqual(s.repo.deliveries('all', 10), []);
    assert.equal(s.bus.latestId(), 0);
  });

  it('a hook registered or deleted is seen by the very next event', () => {
    const s = setup();
    const e1 = s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'n', data: {} });
    s.addHook('late');
    const e2 = s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'n', data: {} });
    assert.equal(s.repo.deliveryFor('late', e1.id), undefined);
    assert.ok(s.repo.deliveryFor('late', e2.id));
    assert.equal(s.repo.delete('late'), true);
    assert.deepEqual(s.repo.deliveries('late', 10), [], 'deliveries go with their hook');
    s.bus.publish({ type: 'vm.created', vmId: 'v', vmName: 'n', data: {} });
    assert.equal((s.db.prepare('SELECT COUNT(*) AS n FROM webhook_deliveries').get() as { n: number }).n, 0);
  });
});
