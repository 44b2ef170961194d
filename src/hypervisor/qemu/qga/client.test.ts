import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeQgaServer } from '../../../../test/fakes/fake-qga-server.js';
import { QgaClient, type QgaClientOptions } from './client.js';
import { QgaClosedError, QgaCommandError, QgaTimeoutError, QgaUnavailableError } from './errors.js';

async function fake(t: TestContext): Promise<FakeQgaServer> {
  const server = await FakeQgaServer.start();
  t.after(() => server.close());
  return server;
}

function client(t: TestContext, server: FakeQgaServer, opts: QgaClientOptions = {}): QgaClient {
  const c = new QgaClient(server.socketPath, { syncTimeoutMs: 300, defaultTimeoutMs: 500, ...opts });
  t.after(() => c.close());
  return c;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('the first command is preceded by 0xFF and a guest-sync-delimited handshake; later ones are not', async (t) => {
  const server = await fake(t);
  server.handle('guest-info', { return: { version: '7.2.22', supported_commands: [] } });
  const c = client(t, server);
  assert.deepEqual(await c.execute('guest-info'), { version: '7.2.22', supported_commands: [] });
  await c.execute('guest-ping');
  assert.deepEqual(server.received.map((x) => x.execute), ['guest-sync-delimited', 'guest-info', 'guest-ping']);
  assert.equal(typeof server.received[0]!.arguments!.id, 'number');
  assert.equal(c.synced, true);
});

test('one request at a time: the next is sent only after the answer to the one before', async (t) => {
  const server = await fake(t);
  const gates: ReturnType<typeof deferred>[] = [];
  server.handle('slow', async (cmd) => {
    const g = deferred();
    gates.push(g);
    await g.promise;
    return { return: cmd.arguments?.n };
  });
  const c = client(t, server, { defaultTimeoutMs: 5000 });
  const results = [1, 2, 3].map((n) => c.execute('slow', { n }));
  for (let i = 0; i < 3; i++) {
    while (gates.length <= i) await delay(5);
    await delay(20);
    assert.equal(gates.length, i + 1, 'no second request while one is unanswered');
    gates[i]!.resolve();
  }
  assert.deepEqual(await Promise.all(results), [1, 2, 3]);
  assert.equal(server.maxInFlight, 1);
});

test('noise before the sentinel, and stray answers, are skipped during the handshake', async (t) => {
  const server = await fake(t);
  const c = client(t, server);
  server.once('command', (cmd) => {
    if (cmd.execute !== 'guest-sync-delimited') return;
    // Written before the fake's own sentinel and answer: junk, a half line, a sentinel with a wrong id.
    server.sendBytes('garbage line\n{"return": 12');
    server.sendBytes(Buffer.from([0xff]));
    server.sendBytes('{"return": 424242}\n{"return": {}}\n');
  });
  await c.execute('guest-ping');
  assert.equal(c.synced, true);
});

test('an agent that never answers: GUEST unavailable after the sync timeout, not a hang', async (t) => {
  const server = await fake(t);
  server.stopAgent();
  const c = client(t, server, { syncTimeoutMs: 200 });
  const t0 = Date.now();
  await assert.rejects(c.execute('guest-ping'), QgaUnavailableError);
  assert.ok(Date.now() - t0 < 2000);
  await assert.rejects(c.sync(), QgaUnavailableError);
  // The agent starts and first reads the stale handshakes left in the channel: their answers carry old ids
  // and must not be taken for the answer to the new one.
  server.startAgent();
  await c.execute('guest-ping');
  const syncs = server.received.filter((x) => x.execute === 'guest-sync-delimited').length;
  assert.equal(syncs, 3);
});

test('a command that times out: a late answer is dropped and the next command resynchronises', async (t) => {
  const server = await fake(t);
  const late = deferred();
  server.handle('slow', async () => { await late.promise; return { return: 'late' }; });
  server.handle('quick', { return: 'quick' });
  const c = client(t, server, { defaultTimeoutMs: 150 });
  await assert.rejects(c.execute('slow'), (e: unknown) => e instanceof QgaTimeoutError && e.command === 'slow');
  assert.equal(c.synced, false);
  const next = c.execute('quick');
  await server.nextCommand('quick');
  late.resolve();
  assert.equal(await next, 'quick');
  assert.deepEqual(server.received.map((x) => x.execute), ['guest-sync-delimited', 'slow', 'guest-sync-delimited', 'quick']);
});

test('garbage after an answer marks the stream out of step: the next command resynchronises', async (t) => {
  const server = await fake(t);
  const c = client(t, server);
  await c.execute('guest-ping');
  server.sendBytes('\u0000\u0001 not json\n');
  await delay(30);
  assert.equal(c.synced, false);
  await c.execute('guest-ping');
  assert.equal(server.received.filter((x) => x.execute === 'guest-sync-delimited').length, 2);
});

test('the agent restarts inside the guest mid-command: timeout, then the new agent answers', async (t) => {
  const server = await fake(t);
  server.handle('guest-exec', () => { server.stopAgent(); return { noReply: true }; });
  const c = client(t, server, { defaultTimeoutMs: 150, syncTimeoutMs: 150 });
  await c.execute('guest-ping');
  await assert.rejects(c.execute('guest-exec', { path: 'true' }), QgaTimeoutError);
  await assert.rejects(c.execute('guest-ping'), QgaUnavailableError);
  server.startAgent();
  await c.execute('guest-ping');
});

test('QEMU goes away: the waiting command fails with QgaClosedError and the next call reconnects', async (t) => {
  const server = await fake(t);
  const gate = deferred();
  server.handle('slow', async () => { await gate.promise; return { return: 1 }; });
  const c = client(t, server, { defaultTimeoutMs: 5000 });
  await c.execute('guest-ping');
  const pending = c.execute('slow');
  await server.nextCommand('slow');
  server.dropConnections();
  await assert.rejects(pending, QgaClosedError);
  gate.resolve();
  await c.execute('guest-ping');
  assert.equal(server.received.filter((x) => x.execute === 'guest-sync-delimited').length, 2);
});

test('no socket at all: unavailable, quickly', async (t) => {
  const server = await fake(t);
  const c = new QgaClient(`${server.socketPath}.missing`, { connectTimeoutMs: 100 });
  t.after(() => c.close());
  await assert.rejects(c.execute('guest-ping'), (e: unknown) => e instanceof QgaUnavailableError && /is the VM running/.test(e.message));
});

test('an error answer is a QgaCommandError with the class and description', async (t) => {
  const server = await fake(t);
  server.handle('guest-file-open', { error: { class: 'GenericError', desc: "failed to open file '/x' (mode: 'r'): No such file or directory" } });
  const c = client(t, server);
  await assert.rejects(c.execute('guest-file-open', { path: '/x', mode: 'r' }), (e: unknown) =>
    e instanceof QgaCommandError && e.errorClass === 'GenericError' && /No such file/.test(e.desc));
  await assert.rejects(c.execute('guest-nope'), (e: unknown) => e instanceof QgaCommandError && e.errorClass === 'CommandNotFound');
  // An error is an answer: the stream stays in step.
  assert.equal(c.synced, true);
});

test('commands that answer only on failure: silence is success, an error is reported', async (t) => {
  const server = await fake(t);
  server.handle('guest-shutdown', { noReply: true });
  const c = client(t, server, { noReplyGraceMs: 100 });
  assert.equal(await c.execute('guest-shutdown', { mode: 'powerdown' }, { noReply: true }), undefined);
  server.handle('guest-shutdown', { error: { class: 'GenericError', desc: 'cannot' } });
  await assert.rejects(c.execute('guest-shutdown', { mode: 'powerdown' }, { noReply: true }), QgaCommandError);
});

test('close fails queued calls', async (t) => {
  const server = await fake(t);
  const c = new QgaClient(server.socketPath);
  await c.execute('guest-ping');
  await c.close();
  await assert.rejects(c.execute('guest-ping'), QgaClosedError);
});
