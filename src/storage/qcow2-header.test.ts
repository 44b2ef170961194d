import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { run } from '../util/run.js';
import { readBackingName, readLayerFacts } from './qcow2-header.js';

let dir = '';
before(async () => { dir = await mkdtemp(join(tmpdir(), 'grove-qcow2-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function qemuImg(...args: string[]): Promise<void> {
  const r = await run('qemu-img', args, 30_000);
  assert.equal(r.code, 0, r.stderr);
}

test('a standalone qcow2 names no backing file', async () => {
  await qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '64M');
  assert.equal(await readBackingName(join(dir, 'base.qcow2')), null);
  assert.equal((await readLayerFacts(join(dir, 'base.qcow2'))).virtualSize, 64 * 1024 * 1024);
});

test('an overlay names its backing file as written, relative names included', async () => {
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', '-u', join(dir, 'top.qcow2'), '64M');
  assert.equal(await readBackingName(join(dir, 'top.qcow2')), 'base.qcow2');
  const abs = join(dir, 'base.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', abs, '-u', join(dir, 'abs.qcow2'), '64M');
  assert.equal(await readBackingName(join(dir, 'abs.qcow2')), abs);
});

test('a file that is not qcow2 is refused, not misread', async () => {
  await writeFile(join(dir, 'raw.img'), Buffer.alloc(4096));
  await assert.rejects(readBackingName(join(dir, 'raw.img')), /not a qcow2 image/);
});

test('a layer holds data once anything is written to it or a snapshot is taken, not before', async () => {
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', '-u', join(dir, 'empty.qcow2'), '64M');
  assert.equal((await readLayerFacts(join(dir, 'empty.qcow2'))).holdsData, false);
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', '-u', join(dir, 'written.qcow2'), '64M');
  const w = await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 40M 4k', join(dir, 'written.qcow2')], 30_000);
  assert.equal(w.code, 0, w.stderr);
  assert.equal((await readLayerFacts(join(dir, 'written.qcow2'))).holdsData, true);
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', '-u', join(dir, 'snap.qcow2'), '64M');
  await qemuImg('snapshot', '-c', 's1', join(dir, 'snap.qcow2'));
  assert.equal((await readLayerFacts(join(dir, 'snap.qcow2'))).holdsData, true);
});
