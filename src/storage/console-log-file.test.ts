import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataLayout } from '../app/layout.js';
import { prepareConsoleFiles } from '../hypervisor/qemu/console-files.js';
import { ConsoleLogFile } from './console-log-file.js';

const KiB = 1024;
const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => 97 + ((i + seed) % 26)));

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'grove-console-log-'));
  const paths = new DataLayout(root).vmPaths('vm');
  mkdirSync(paths.dir, { recursive: true });
  return { root, paths, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

test('trimming frees the oldest blocks of both files and keeps every later offset where it was', async () => {
  const s = setup();
  try {
    const history = pattern(512 * KiB, 0);
    const out = pattern(512 * KiB, 7);
    writeFileSync(s.paths.consoleHistory, history);
    writeFileSync(s.paths.consoleOut, out);
    const log = new ConsoleLogFile();
    assert.equal(await log.start(s.paths), 0);
    assert.equal(await log.trim(s.paths, 768 * KiB), 768 * KiB);
    assert.equal(await log.start(s.paths), 768 * KiB);
    assert.equal(await log.size(s.paths), 1024 * KiB);
    assert.deepEqual(await log.read(s.paths, 800 * KiB, 100), out.subarray(288 * KiB, 288 * KiB + 100));
    // The history's blocks are gone and half of console.out's; sizes (and so offsets) are unchanged.
    assert.equal(statSync(s.paths.consoleHistory).size, 512 * KiB);
    assert.ok(statSync(s.paths.consoleHistory).blocks * 512 < 16 * KiB, `history still holds ${statSync(s.paths.consoleHistory).blocks * 512} bytes`);
    assert.ok(statSync(s.paths.consoleOut).blocks * 512 <= 260 * KiB, `console.out still holds ${statSync(s.paths.consoleOut).blocks * 512} bytes`);
    // Trimming to an older point changes nothing.
    assert.equal(await log.trim(s.paths, 100), 768 * KiB);

    // The next boot moves console.out into the history without filling the hole back in.
    await prepareConsoleFiles(s.paths);
    assert.equal(statSync(s.paths.consoleHistory).size, 1024 * KiB);
    assert.equal(statSync(s.paths.consoleOut).size, 0);
    assert.ok(statSync(s.paths.consoleHistory).blocks * 512 <= 270 * KiB, `history holds ${statSync(s.paths.consoleHistory).blocks * 512} bytes`);
    assert.deepEqual(await log.read(s.paths, 800 * KiB, 100), out.subarray(288 * KiB, 288 * KiB + 100));
    assert.equal(await log.size(s.paths), 1024 * KiB);
  } finally {
    s.cleanup();
  }
});
