/**
 * End to end: an export written to `<data>/transfer` is compressed as its name says (`.tar.gz`/`.tgz`:
 * gzip, `.tar`: plain tar) when `compression` is left out, and an explicit `compression` that contradicts
 * the name is refused with 400 before anything is written.
 * Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/export-compression.test.js
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readSync, closeSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem } from '../helpers/api.js';

let d: TestDaemon;

before(async () => {
  d = await startDaemon();
  await createGuestVm(d, 'exp');
});

after(async () => {
  await d?.cleanup();
});

/** The first bytes of a file: gzip starts with 1f 8b, a POSIX tar has `ustar` at offset 257. */
function kindOf(path: string): 'gzip' | 'tar' | 'other' {
  const buf = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  try { readSync(fd, buf, 0, 512, 0); } finally { closeSync(fd); }
  if (buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
  return buf.subarray(257, 262).toString('latin1') === 'ustar' ? 'tar' : 'other';
}

test('without compression, a .tar.gz or .tgz path is written gzip and a .tar path a plain tar', async () => {
  for (const [file, kind] of [['a.grove.tar.gz', 'gzip'], ['b.tgz', 'gzip'], ['c.grove.tar', 'tar'], ['d.bundle', 'tar']] as const) {
    const r = assertOk(await d.call('POST', '/vms/exp/export', { path: file }), 201, file);
    assert.equal(r.path, join(d.dataDir, 'transfer', file));
    assert.equal(kindOf(r.path), kind, `${file} is ${kind}`);
  }
});

test('an explicit compression agreeing with the name, or on a neutral name, is obeyed', async () => {
  assert.equal(kindOf(assertOk(await d.call('POST', '/vms/exp/export', { path: 'e.tar.gz', compression: 'gzip' }), 201, 'e').path), 'gzip');
  assert.equal(kindOf(assertOk(await d.call('POST', '/vms/exp/export', { path: 'f.tar', compression: 'none' }), 201, 'f').path), 'tar');
  assert.equal(kindOf(assertOk(await d.call('POST', '/vms/exp/export', { path: 'g.bundle', compression: 'gzip' }), 201, 'g').path), 'gzip');
});

test('compression contradicting the name is 400 naming compression, and no file is written', async () => {
  for (const [file, compression] of [['h.tar.gz', 'none'], ['i.tgz', 'none'], ['j.tar', 'gzip']] as const) {
    const r = await d.call('POST', '/vms/exp/export', { path: file, compression });
    assertProblem(r, 400, 'VALIDATION_FAILED', `${file} with ${compression}`);
    assert.equal(r.body.field, 'compression');
    assert.match(r.body.detail, /compression/);
    assert.equal(existsSync(join(d.dataDir, 'transfer', file)), false, `${file} not written`);
  }
  assert.deepEqual(readdirSync(join(d.dataDir, 'transfer')).filter((f) => f.includes('.partial')), [], 'no partial file left');
});

test('a gzip bundle written by name imports back', async () => {
  const vm = assertOk(await d.call('POST', '/vms/import', { path: 'a.grove.tar.gz', name: 'exp-back' }), 201, 'import');
  assert.equal(vm.name, 'exp-back');
  assert.equal(vm.state, 'stopped');
});
