import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readRange, sizeOr0 } from './files.js';

test('sizeOr0 and readRange treat a missing file as empty and read bytes, not characters', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'grove-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'log');
  assert.equal(await sizeOr0(join(dir, 'missing')), 0);
  assert.equal((await readRange(join(dir, 'missing'), 0, 10)).length, 0);
  await writeFile(f, 'héllo wörld'); // multi-byte characters: byte offsets differ from string indices
  assert.equal(await sizeOr0(f), Buffer.byteLength('héllo wörld'));
  assert.equal((await readRange(f, 7, 100)).toString(), 'wörld');
  assert.equal((await readRange(f, 0, 6)).toString(), 'héllo');
  assert.equal((await readRange(f, 1000, 10)).length, 0);
  await assert.rejects(sizeOr0(join(f, 'not-a-dir')), { code: 'ENOTDIR' });
});
