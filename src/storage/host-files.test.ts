import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainError } from '../domain/errors.js';
import { FsHostFiles } from './host-files.js';

async function* slowly(text: string): AsyncIterable<Buffer> {
  for (const c of text) {
    await new Promise((r) => setImmediate(r));
    yield Buffer.from(c);
  }
}

test('downloads racing to one host path: one file is created, the others are FILE_EXISTS and leave it alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grove-host-files-'));
  try {
    const target = join(dir, 'out.bin');
    const files = new FsHostFiles();
    const results = await Promise.allSettled(['first', 'second', 'third'].map((t) => files.create(target, slowly(t))));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof DomainError && r.reason.code === 'FILE_EXISTS', String(r.reason));
    }
    assert.ok(['first', 'second', 'third'].includes(readFileSync(target, 'utf8')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
