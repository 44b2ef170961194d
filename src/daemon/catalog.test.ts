import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CatalogError } from '../domain/distro.js';
import type { HttpFetcher } from '../ports/downloads.js';
import { loadCatalog } from './catalog.js';

const noNetwork: HttpFetcher = { get: () => { throw new Error('no network in this test'); } };

test('a catalog path that is not a regular file, or is far too large, is refused before it is read', async () => {
  // Read whole, /dev/zero would never end, and a FIFO would block start-up until someone writes to it.
  await assert.rejects(loadCatalog('/dev/zero', noNetwork), (e: unknown) => e instanceof CatalogError
    && e.message === 'the catalog /dev/zero is not a regular file');
  const dir = mkdtempSync(join(tmpdir(), 'grove-catalog-'));
  try {
    const big = join(dir, 'big.json');
    writeFileSync(big, `{ "distros": [] ${' '.repeat(2 * 1024 * 1024)}}`);
    await assert.rejects(loadCatalog(big, noNetwork), (e: unknown) => e instanceof CatalogError
      && e.message === `the catalog ${big} is larger than 1048576 bytes`);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, '{ "distros": [] }');
    assert.deepEqual(await loadCatalog(ok, noNetwork), { catalog: { distros: [] }, source: ok });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
