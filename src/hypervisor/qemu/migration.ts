import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { QmpClient } from './qmp/index.js';

const MIGRATION_TIMEOUT_MS = 10 * 60_000;

/**
 * QEMU 7.2 has no `file:` migration target, and `exec:` would run a shell; a unix socket that we serve
 * ourselves carries the stream to and from a plain file instead.
 */
async function prepare(qmp: QmpClient): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  // The default bandwidth cap (tens of MiB/s) would throttle a local save for no reason.
  await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 1024 ** 3 });
}

function completed(qmp: QmpClient): Promise<void> {
  return qmp.waitForEvent('MIGRATION', {
    timeoutMs: MIGRATION_TIMEOUT_MS,
    predicate: (d) => d['status'] === 'completed' || d['status'] === 'failed' || d['status'] === 'cancelled',
  }).then((e) => {
    if (e.data['status'] !== 'completed') throw new Error(`migration ${String(e.data['status'])}`);
  });
}

/** Saves RAM and device state of a (paused) VM to `file`; QEMU stays alive, paused, afterwards. */
export async function saveStateToFile(qmp: QmpClient, socketPath: string, file: string): Promise<void> {
  await prepare(qmp);
  await rm(socketPath, { force: true });
  const tmp = `${file}.partial`;
  const server = createServer();
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (sock: Socket) => {
      server.close();
      pipeline(sock, createWriteStream(tmp, { flush: true })).then(resolve, reject);
    });
    server.once('error', reject);
  });
  await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once('error', reject));
  try {
    const done = completed(qmp);
    await qmp.execute('migrate', { uri: `unix:${socketPath}` });
    await Promise.all([done, received]);
    await rename(tmp, file);
  } catch (e) {
    server.close();
    await rm(tmp, { force: true });
    throw e;
  } finally {
    await rm(socketPath, { force: true });
  }
}

/** Feeds a saved state into a QEMU started with `-incoming defer`. */
export async function loadStateFromFile(qmp: QmpClient, socketPath: string, file: string): Promise<void> {
  await prepare(qmp);
  await rm(socketPath, { force: true });
  const done = completed(qmp);
  await qmp.execute('migrate-incoming', { uri: `unix:${socketPath}` });
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(socketPath);
    s.once('connect', () => resolve(s)).once('error', reject);
  });
  try {
    await Promise.all([pipeline(createReadStream(file), sock), done]);
  } finally {
    sock.destroy();
    await rm(socketPath, { force: true });
  }
}
