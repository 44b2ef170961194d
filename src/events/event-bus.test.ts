import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDb } from '../store/db.js';
import { SqliteEventRepo } from '../store/event-repo.js';
import { EventBus } from './event-bus.js';
import type { GroveEvent } from '../domain/events.js';

function bus(retention = 100) {
  const db = openDb(':memory:');
  return new EventBus(new SqliteEventRepo(db), { retention });
}

test('ids are monotonic and live subscribers get matching events only', () => {
  const b = bus();
  const got: GroveEvent[] = [];
  b.subscribe({ types: ['vm.*'] }, (e) => got.push(e));
  const a = b.publish({ type: 'vm.created', vmId: 'x', vmName: 'x', data: {} });
  b.publish({ type: 'console.output', vmId: 'x', data: { data: 'hi' } });
  const c = b.publish({ type: 'vm.started', vmId: 'x', data: {} });
  assert.ok(c.id > a.id);
  assert.deepEqual(got.map((e) => e.type), ['vm.created', 'vm.started']);
});

test('replay after an id delivers exactly the missed events, then live ones, without duplicates', () => {
  const b = bus();
  const ids = Array.from({ length: 5 }, (_, i) => b.publish({ type: 'vm.updated', vmId: 'v', data: { i } }).id);
  const got: number[] = [];
  const sub = b.subscribe({ types: [] }, (e) => got.push(e.id), ids[1]);
  b.publish({ type: 'vm.updated', vmId: 'v', data: {} });
  assert.deepEqual(got, [ids[2], ids[3], ids[4], ids[4]! + 1]);
  sub.close();
  b.publish({ type: 'vm.updated', vmId: 'v', data: {} });
  assert.equal(got.length, 4);
});

test('replay pages through more than one page', () => {
  const b = bus(5000);
  for (let i = 0; i < 1200; i++) b.publish({ type: 'vm.updated', data: { i } });
  let n = 0;
  b.subscribe({ types: [] }, () => n++, 0);
  assert.equal(n, 1200);
});

test('pruning keeps the newest events; a replay from before them reports a gap', () => {
  const b = bus(100);
  for (let i = 0; i < 500; i++) b.publish({ type: 'vm.updated', data: { i } });
  const gap = b.gapBefore(1);
  assert.ok(gap);
  assert.ok(gap.oldestAvailable > 300);
  assert.equal(b.gapBefore(b.latestId()), null);
  assert.equal(b.gapBefore(gap.oldestAvailable - 1), null);
});

test('ids keep growing after pruning everything older', () => {
  const b = bus(100);
  let last = 0;
  for (let i = 0; i < 300; i++) last = b.publish({ type: 'vm.updated', data: {} }).id;
  assert.equal(b.latestId(), last);
  assert.equal(b.publish({ type: 'vm.updated', data: {} }).id, last + 1);
});

test('persist hooks run in the same transaction as the event: a failing hook stores neither', () => {
  const db = openDb(':memory:');
  const b = new EventBus(new SqliteEventRepo(db), { retention: 100 }, (fn) => db.transaction(fn)());
  const seen: number[] = [];
  let fail = false;
  b.onPersist((e) => { if (fail) throw new Error('outbox full'); seen.push(e.id); });
  const first = b.publish({ type: 'vm.updated', data: {} });
  fail = true;
  assert.throws(() => b.publish({ type: 'vm.updated', data: {} }), /outbox full/);
  assert.deepEqual(seen, [first.id]);
  assert.equal(b.latestId(), first.id);
});
