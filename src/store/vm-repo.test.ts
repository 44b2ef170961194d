import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Vm } from '../domain/vm.js';
import { openDb } from './db.js';
import { VmNameTakenError } from '../ports/repos.js';
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

test('a taken name is the port\'s typed error on insert and on rename, and nothing is written', () => {
  const db = openDb(':memory:');
  const repo = new SqliteVmRepo(db);
  repo.insert(vm(false));
  const other: Vm = { ...vm(false), id: '44444444-4444-4444-8444-444444444444', name: 'other' };
  repo.insert(other);
  const taken = (e: unknown) => e instanceof VmNameTakenError && e.vmName === 'boots' && e.message === 'a VM named \'boots\' already exists';
  assert.throws(() => repo.insert({ ...other, id: '55555555-5555-4555-8555-555555555555', name: 'boots' }), taken);
  assert.throws(() => repo.update({ ...other, name: 'boots' }), taken);
  assert.deepEqual(repo.list().map((v) => v.name).sort(), ['boots', 'other'], 'the cached records are unchanged');
  assert.deepEqual(new SqliteVmRepo(db).list().map((v) => v.name).sort(), ['boots', 'other'], 'so are the stored ones');
});
