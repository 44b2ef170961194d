import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataLayout } from '../../app/layout.js';
import { ConsoleBuffer } from '../../app/console/console-buffer.js';
import { CONSOLE_BUFFER_BYTES } from '../../app/console/console-service.js';
import { prepareConsoleFiles } from './console-files.js';
import { QemuSerialLink } from './serial-link.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stands in for QEMU's pipe chardev: the FIFO's read end held open, output appended to the file. */
async function fakeQemu() {
  const root = mkdtempSync(join(tmpdir(), 'grove-serial-'));
  const paths = new DataLayout(root).vmPaths('vm');
  mkdirSync(paths.dir, { recursive: true });
  await prepareConsoleFiles(paths);
  const reader = await open(paths.consoleIn, 'r+');
  return { root, paths, reader, cleanup: async () => { await reader.close(); rmSync(root, { recursive: true, force: true }); } };
}

test('output appended by QEMU arrives in order with exact offsets; input reaches the FIFO', async () => {
  const q = await fakeQemu();
  const link = await QemuSerialLink.open(q.paths, 0);
  try {
    const got: { offset: number; text: string }[] = [];
    link.onData((c, offset) => got.push({ offset, text: c.toString() }));
    appendFileSync(q.paths.consoleOut, 'hello ');
    await sleep(50);
    appendFileSync(q.paths.consoleOut, 'world\n');
    for (let i = 0; i < 100 && link.offset < 12; i++) await sleep(20);
    assert.equal(got.map((g) => g.text).join(''), 'hello world\n');
    assert.equal(got[0]!.offset, 0);
    assert.equal(link.offset, 12);
    await link.write(Buffer.from('ls\r'));
    const buf = Buffer.alloc(16);
    const { bytesRead } = await q.reader.read(buf, 0, 16, null);
    assert.equal(buf.subarray(0, bytesRead).toString(), 'ls\r');
  } finally {
    link.close();
    await q.cleanup();
  }
});

test('a new boot moves earlier output to the history; offsets continue from there', async () => {
  const q = await fakeQemu();
  try {
    appendFileSync(q.paths.consoleOut, 'boot one\n');
    await prepareConsoleFiles(q.paths);
    appendFileSync(q.paths.consoleOut, 'boot two\n');
    const link = await QemuSerialLink.open(q.paths, 9);
    const got: { offset: number; text: string }[] = [];
    link.onData((c, offset) => got.push({ offset, text: c.toString() }));
    for (let i = 0; i < 100 && link.offset < 18; i++) await sleep(20);
    link.close();
    assert.deepEqual(got, [{ offset: 9, text: 'boot two\n' }]);
  } finally {
    await q.cleanup();
  }
});

test('console chunks do not pin far larger read buffers', async (t) => {
  const q = await fakeQemu();
  const link = await QemuSerialLink.open(q.paths, 0);
  try {
    const buffer = new ConsoleBuffer(CONSOLE_BUFFER_BYTES, 0);
    const held: Buffer[] = [];
    link.onData((chunk, offset) => { buffer.append(chunk, offset); held.push(chunk); });
    const lines = 2000;
    for (let i = 0; i < lines; i++) {
      appendFileSync(q.paths.consoleOut, `${String(i).padStart(6, '0')} ${'x'.repeat(91)}\r\n`);
      if (i % 20 === 0) await sleep(2);
    }
    const total = lines * 100;
    for (let i = 0; i < 500 && buffer.end < total; i++) await sleep(20);
    assert.equal(buffer.end, total);
    const bytes = held.reduce((n, c) => n + c.length, 0);
    const pinned = [...new Set(held.map((c) => c.buffer))].reduce((n, b) => n + b.byteLength, 0);
    t.diagnostic(`${held.length} chunks, ${bytes} bytes, ${pinned} bytes of backing memory`);
    // Small chunks may share Node's 8 KiB pool slabs; what must not happen is 256 KiB per chunk.
    assert.ok(pinned <= 2 * bytes + 512 * 1024, `${bytes} bytes of output pin ${pinned} bytes`);
  } finally {
    link.close();
    await q.cleanup();
  }
});
