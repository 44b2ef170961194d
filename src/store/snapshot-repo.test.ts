import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { migrate } from './db.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteSnapshotRepo } from './snapshot-repo.js';

test('the snapshot size migration gives every existing snapshot its VM\'s disk size (the only size it could have had)', () => {
  const db = new Database(':memory:');
  // The schema as it was before the size migration, with a VM of 7 GiB and one snapshot.
  const sizeMigration = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN disk_gb'));
  for (const [v, sql] of MIGRATIONS.slice(0, sizeMigration).entries()) {
    db.exec(sql);
    db.pragma(`user_version = ${v + 1}`);
  }
  db.prepare(`INSERT INTO vms (id, name, state, cpu, memory_mb, disk_gb, boot, network, sort_order, created_at, updated_at)
    VALUES ('v1', 'old', 'stopped', 1, 128, 7, '{}', '{"mode":"none","portForwards":[]}', 0, 't', 't')`).run();
  db.prepare(`INSERT INTO snapshots (id, vm_id, tag, name, kind, vm_state, created_at) VALUES ('s1', 'v1', 's1', 'before', 'disk', 'stopped', 't')`).run();

  migrate(db);
  const repo = new SqliteSnapshotRepo(db);
  assert.equal(repo.get('s1')?.diskGB, 7);

  repo.insert({ id: 's2', vmId: 'v1', tag: 's2', name: 'after', description: null, kind: 'live', vmState: 'running', diskGB: 9, createdAt: 'u' });
  assert.deepEqual(repo.list('v1').map((s) => [s.name, s.diskGB]), [['before', 7], ['after', 9]]);
});
