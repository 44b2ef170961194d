import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeQmpServer } from '../../../test/fakes/fake-qmp-server.js';
import { QmpClient } from './qmp/client.js';
import * as qmp from './qmp/commands.js';
import { QmpCommandError } from './qmp/errors.js';
import { loadStateFromInheritedFd, saveStateToFile } from './migration.js';

async function setup(t: TestContext): Promise<{ server: FakeQmpServer; client: QmpClient; dir: string }> {
  const server = await FakeQmpServer.start();
  t.after(() => server.close());
  const client = await QmpClient.connect(server.socketPath, { connectTimeoutMs: 2000 });
  t.after(() => client.close());
  const dir = await mkdtemp(join(tmpdir(), 'grove-migration-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  server.handle('migrate-set-capabilities', { return: {} });
  server.handle('migrate-set-parameters', { return: {} });
  return { server, client, dir };
}

/** Collects unhandled rejections for the rest of the test; the bug being guarded against is one. */
function watchUnhandled(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const on = (reason: unknown): void => { seen.push(reason); };
  process.on('unhandledRejection', on);
  t.after(() => { process.off('unhandledRejection', on); });
  return seen;
}

test('a refused migrate leaves no pending wait that rejects once QMP closes', async (t) => {
  const unhandled = watchUnhandled(t);
  const { server, client, dir } = await setup(t);
  server.handle('migrate', { error: { class: 'GenericError', desc: 'no' } });
  await assert.rejects(saveStateToFile(client, join(dir, 'mig.sock'), join(dir, 'state')), QmpCommandError);
  await assert.rejects(stat(join(dir, 'state.partial')), { code: 'ENOENT' });
  await client.close();
  await delay(20);
  assert.deepEqual(unhandled, []);
});

test('a refused migrate-incoming leaves no pending wait either', async (t) => {
  const unhandled = watchUnhandled(t);
  const { server, client } = await setup(t);
  server.handle('migrate-incoming', { error: { class: 'GenericError', desc: 'no' } });
  await assert.rejects(loadStateFromInheritedFd(client), QmpCommandError);
  await client.close();
  await delay(20);
  assert.deepEqual(unhandled, []);
});

test('a load asks QEMU to read the state from the descriptor it inherited, and ends with the migration', async (t) => {
  const { server, client } = await setup(t);
  server.handle('migrate-incoming', () => {
    setImmediate(() => server.sendEvent('MIGRATION', { status: 'completed' }));
    return { return: {} };
  });
  await loadStateFromInheritedFd(client);
  assert.deepEqual(server.received.filter((x) => x.execute === 'migrate-incoming').map((x) => x.arguments), [{ uri: 'fd:3' }]);
});

test('waitForMigration settles on the final MIGRATION status only', async (t) => {
  const { server, client } = await setup(t);
  const ok = qmp.waitForMigration(client, { timeoutMs: 2000 });
  server.sendEvent('MIGRATION', { status: 'active' });
  server.sendEvent('MIGRATION', { status: 'completed' });
  await ok;
  const failed = qmp.waitForMigration(client, { timeoutMs: 2000 });
  server.sendEvent('MIGRATION', { status: 'failed' });
  await assert.rejects(failed, /migration failed/);
  const abort = new AbortController();
  const abandoned = qmp.waitForMigration(client, { timeoutMs: 2000, signal: abort.signal });
  abort.abort(new Error('gone'));
  await assert.rejects(abandoned, /gone/);
});
