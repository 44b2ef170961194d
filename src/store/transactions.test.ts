import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmRecords } from '../app/vm/vm-records.js';
import type { GroveEvent } from '../domain/events.js';
import type { Vm } from '../domain/vm.js';
import { VmNameTakenError } from '../ports/repos.js';
import { EventBus } from '../events/event-bus.js';
import { openDb } from './db.js';
import { SqliteEventRepo } from './event-repo.js';
import { Transactions } from './transactions.js';
import { SqliteVmErrorRepo } from './vm-error-repo.js';
import { SqliteVmRepo } from './vm-repo.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function vmNamed(name: string, id: string): Vm {
  return {
    id, name, state: 'stopped', cpu: 1, memoryMB: 128, diskGB: 1, distro: null, boot: {}, network: { mode: 'none', portForwards: [] }, order: 0,
    createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', startedAt: null, accelerator: null, lastError: null, cloudInit: null, autostart: false,
  };
}

/** The daemon's wiring, on a real SQLite database: the VM cache and the event bus both behind the one transaction manager. */
function world() {
  const db = openDb(':memory:');
  const tx = new Transactions(db);
  const vms = new SqliteVmRepo(db, tx);
  const events = new SqliteEventRepo(db);
  const bus = new EventBus(events, { retention: 1000 }, tx.run, tx.afterCommit);
  const records = new VmRecords({ vms, errors: new SqliteVmErrorRepo(db), events: bus, transact: tx.run, log: silent });
  const seen: GroveEvent[] = [];
  bus.subscribe({ types: [] }, (e) => seen.push(e));
  const a = vmNamed('alpha', '11111111-1111-4111-8111-111111111111');
  vms.insert(a);
  const rowState = (id: string) => (db.prepare('SELECT state FROM vms WHERE id = ?').get(id) as { state: string }).state;
  const storedTypes = () => (db.prepare('SELECT type FROM events ORDER BY id').all() as { type: string }[]).map((r) => r.type);
  return { db, tx, vms, bus, records, seen, a, rowState, storedTypes };
}

test('a transaction rolled back by a failing statement leaves neither the VM cache nor event subscribers believing its change', () => {
  const w = world();
  w.vms.insert(vmNamed('beta', '22222222-2222-4222-8222-222222222222'));
  assert.throws(() => w.records.transact(() => {
    w.records.transition(w.a.id, 'running', { startedAt: new Date().toISOString() }, 'vm.started', {});
    // Read-your-writes inside the transaction: the change is visible to the code making it.
    assert.equal(w.vms.get(w.a.id)?.state, 'running');
    assert.equal(w.seen.length, 0, 'subscribers hear nothing before the commit');
    // A statement that fails: the second VM takes a name already in use, and the whole change rolls back.
    w.vms.insert(vmNamed('alpha', '33333333-3333-4333-8333-333333333333'));
  }), VmNameTakenError);

  assert.equal(w.rowState(w.a.id), 'stopped', 'the database rolled back');
  assert.equal(w.vms.get(w.a.id)?.state, 'stopped', 'the cache did not keep the rolled-back state');
  assert.deepEqual(w.vms.list().map((v) => [v.name, v.state]), [['alpha', 'stopped'], ['beta', 'stopped']]);
  assert.equal(w.vms.get('33333333-3333-4333-8333-333333333333'), undefined);
  assert.deepEqual(w.seen, [], 'no subscriber saw vm.started');
  assert.deepEqual(w.storedTypes(), [], 'nor is it in the event log');
});

test('a transaction rolled back by a thrown error (the records helper\'s fail path included) is invisible too', () => {
  const w = world();
  assert.throws(() => w.records.transact(() => {
    w.records.fail(w.a, 'boom', 'operation');
    throw new Error('forced rollback');
  }), /forced rollback/);
  assert.equal(w.vms.get(w.a.id)?.state, 'stopped');
  assert.equal(w.vms.get(w.a.id)?.lastError, null);
  assert.deepEqual(w.seen, []);
});

test('once committed, the cache and the subscribers get the change, in order', () => {
  const w = world();
  w.records.transact(() => {
    w.records.transition(w.a.id, 'starting' as Vm['state'], {}, 'vm.updated', {});
    w.records.transition(w.a.id, 'running', {}, 'vm.started', {});
    assert.equal(w.seen.length, 0);
  });
  assert.equal(w.vms.get(w.a.id)?.state, 'running');
  assert.equal(w.rowState(w.a.id), 'running');
  assert.deepEqual(w.seen.map((e) => e.type), ['vm.updated', 'vm.started']);
});

test('a savepoint that rolls back inside a committed transaction takes only its own change with it', () => {
  const w = world();
  w.records.transact(() => {
    w.records.transition(w.a.id, 'running', {}, 'vm.started', {});
    assert.throws(() => w.records.transact(() => {
      w.records.transition(w.a.id, 'paused', {}, 'vm.paused', {});
      w.vms.delete(w.a.id);
      throw new Error('inner rollback');
    }));
    assert.equal(w.vms.get(w.a.id)?.state, 'running', 'the inner change is gone inside the outer transaction too');
  });
  assert.equal(w.vms.get(w.a.id)?.state, 'running');
  assert.equal(w.rowState(w.a.id), 'running');
  assert.deepEqual(w.seen.map((e) => e.type), ['vm.started']);
  assert.deepEqual(w.storedTypes(), ['vm.started']);
});

test('outside any transaction a write is visible at once (auto-commit)', () => {
  const w = world();
  w.records.transition(w.a.id, 'running', {}, 'vm.started', {});
  assert.equal(w.vms.get(w.a.id)?.state, 'running');
  assert.deepEqual(w.seen.map((e) => e.type), ['vm.started']);
});
