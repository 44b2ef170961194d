import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Vm } from '../domain/vm.js';
import { openDb } from './db.js';
import { SqliteVmRepo } from './vm-repo.js';

function vm(autostart: boolean): Vm {
  return {
    id: '33333333-3333-4333-8333-333333333333', name: 'boots', state: 'stopped', cpu: 1, memoryMB: 128, diskGB: 1, distro: null, boot: {},
    network: { mode: 'none', portForwards: [] }, order: 0, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z',
    startedAt: null, accelerator: null, lastError: null, cloudInit: null, autostart,
  };
}

test('autostart is stored: a repo opened afresh on the database reads back the updated value', () => {
  const db = openDb(':memory:');
  const repo = new SqliteVmRepo(db);
  repo.insert(vm(false));
  repo.update({ ...vm(false), autostart: true });
  assert.equal(new SqliteVmRepo(db).get(vm(false).id)?.autostart, true);
});
