import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError } from '../../domain/errors.js';
import { checkBundleManifest } from './bundle-manifest.js';

const good = () => ({
  format: 'grove-vm-bundle', version: 1, groveVersion: '0.1.0', exportedAt: '2026-12-04T23:00:00.000Z',
  vm: { name: 'web', cpu: 1, memoryMB: 256, diskGB: 1, cmdline: 'console=ttyS0', network: { mode: 'user', portForwards: [{ host: 2222, guest: 22, protocol: 'tcp' }] } },
  files: { 'disk.qcow2': { size: 196_608, sha256: 'a'.repeat(64) } },
  snapshots: [
    { tag: 't1', name: 'one', description: null, kind: 'disk', vmState: 'stopped', createdAt: '2026-12-04T22:00:00.000Z' },
    { tag: 't2', name: 'two', description: 'after boot', kind: 'live', vmState: 'running', createdAt: '2026-12-04T22:10:00.000Z' },
  ],
});

function refusedAt(patch: (m: any) => void): string {
  const m = good();
  patch(m);
  let field = '';
  assert.throws(() => checkBundleManifest(m), (e: unknown) => {
    assert.ok(e instanceof DomainError && e.code === 'VALIDATION_FAILED', String(e));
    field = String(e.extra['field']);
    assert.ok(e.message.startsWith(field) || e.message.includes(field), e.message);
    return true;
  });
  return field;
}

test('a manifest as Grove writes it passes whole', () => {
  assert.deepEqual(checkBundleManifest(good()), good());
});

test('wrong types, duplicate snapshot tags or names, unknown fields: VALIDATION_FAILED naming the field', () => {
  assert.equal(refusedAt((m) => { m.snapshots[0].description = 42; }), 'manifest.json/snapshots/0/description');
  assert.equal(refusedAt((m) => { m.snapshots[1].createdAt = 1733353800; }), 'manifest.json/snapshots/1/createdAt');
  assert.equal(refusedAt((m) => { m.snapshots[1].createdAt = 'yesterday'; }), 'manifest.json/snapshots/1/createdAt');
  assert.equal(refusedAt((m) => { m.snapshots[1].tag = 't1'; }), 'manifest.json/snapshots/1/tag');
  assert.equal(refusedAt((m) => { m.snapshots[1].name = 'one'; }), 'manifest.json/snapshots/1/name');
  assert.equal(refusedAt((m) => { m.snapshots[0].extra = true; }), 'manifest.json/snapshots/0/extra');
  assert.equal(refusedAt((m) => { m.vm.cpu = '2'; }), 'manifest.json/vm/cpu');
  assert.equal(refusedAt((m) => { m.vm.network.portForwards[0].host = 80; }), 'manifest.json/vm/network/portForwards/0/host');
  assert.equal(refusedAt((m) => { m.files['disk.qcow2'].sha256 = 'xyz'; }), 'manifest.json/files/disk.qcow2/sha256');
  assert.equal(refusedAt((m) => { m.files.other = { size: 1, sha256: 'a'.repeat(64) }; }), 'manifest.json/files/other');
  assert.equal(refusedAt((m) => { delete m.snapshots; }), 'manifest.json/snapshots');
  assert.equal(refusedAt((m) => { m.version = 2; }), 'manifest.json/version');
  assert.equal(refusedAt((m) => { m.format = 'tar'; }), 'manifest.json/format');
});
