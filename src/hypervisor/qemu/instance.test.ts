import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeQmpServer } from '../../../test/fakes/fake-qmp-server.js';
import { DataLayout } from '../../app/layout.js';
import type { Logger } from '../../ports/logger.js';
import { QmpClient } from './qmp/index.js';
import { imageFileName, QemuInstance, type ClosingSerialLink } from './instance.js';

test('a plain image name is the file', () => {
  assert.equal(imageFileName('/data/disks/a.qcow2'), '/data/disks/a.qcow2');
});

test('a json: pseudo-filename (a node added with backing: null) yields its file child\'s name', () => {
  const name = 'json:{"backing": null, "driver": "qcow2", "file": {"driver": "file", "filename": "/data/disks/b.qcow2"}}';
  assert.equal(imageFileName(name), '/data/disks/b.qcow2');
});

test('a pseudo-filename without a file name is an error, not a guess', () => {
  assert.throws(() => imageFileName('json:{"driver": "qcow2"}'), /no file name/);
  assert.throws(() => imageFileName('json:{not json'), /unreadable/);
});

/** A console link whose last read fails (as a vanished or unreadable console file makes it). */
function failingSerial(): ClosingSerialLink {
  return {
    offset: 0,
    write: () => Promise.resolve(),
    onData: () => () => undefined,
    close: () => undefined,
    flushAndClose: () => Promise.reject(new Error('EIO: i/o error, read')),
  };
}

function recordingLog(): Logger & { errors: Array<{ obj: object; msg: string | undefined }> } {
  const errors: Array<{ obj: object; msg: string | undefined }> = [];
  return { errors, info: () => undefined, warn: () => undefined, error: (obj, msg) => { errors.push({ obj, msg }); } };
}

/** The pid of a process that has ended and been reaped: QEMU already gone when its socket closes. */
async function endedPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

test('QEMU exit is reported (with the reason, and logged) when watching it fails', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'grove-instance-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const server = await FakeQmpServer.start();
  t.after(() => server.close());
  const client = await QmpClient.connect(server.socketPath, { connectTimeoutMs: 5000 });
  t.after(() => client.close());
  const log = recordingLog();
  const instance = new QemuInstance(await endedPid(), client, failingSerial(), new DataLayout(dir).vmPaths('vm1'), log);

  server.dropConnections();
  const info = await instance.exited;
  assert.equal(info.clean, false);
  assert.equal(info.reason, 'QEMU exited (its exit could not be watched to the end: EIO: i/o error, read)');
  assert.equal(log.errors.length, 1);
  assert.match(log.errors[0]!.msg ?? '', /watching QEMU's exit failed/);
});
