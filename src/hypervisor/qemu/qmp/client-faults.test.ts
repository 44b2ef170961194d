// A hostile or broken QMP peer (issue #9): garbage, lines cut in pieces, oversized messages, silence. The
// client must end each with a clean error (never a hang, never an uncaught exception) and keep its memory
// bounded whatever the peer sends.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeQmpServer } from '../../../../test/fakes/fake-qmp-server.js';
import { QmpClient, type QmpConnectOptions } from './client.js';
import { QmpClosedError, QmpProtocolError, QmpTimeoutError } from './errors.js';

async function fake(t: TestContext): Promise<FakeQmpServer> {
  const server = await FakeQmpServer.start();
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, server: FakeQmpServer, opts?: QmpConnectOptions): Promise<QmpClient> {
  const client = await QmpClient.connect(server.socketPath, { connectTimeoutMs: 2000, ...opts });
  t.after(() => client.close());
  return client;
}

test('binary garbage mid-session fails the pending command with a protocol error and closes once', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const client = await connect(t, server);
  const closes: Array<Error | undefined> = [];
  client.on('close', (e) => closes.push(e));
  const sent = server.nextCommand('hang');
  const pending = client.execute('hang');
  pending.catch(() => undefined); // asserted below
  await sent;
  server.sendBytes(Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x22, 0x0d, 0x0a]));
  await assert.rejects(pending, (err: unknown) => {
    assert.ok(err instanceof QmpClosedError);
    assert.ok(err.cause instanceof QmpProtocolError);
    assert.match(err.cause.message, /non-JSON line/);
    return true;
  });
  await assert.rejects(client.execute('query-status'), QmpClosedError);
  await delay(20);
  assert.equal(closes.length, 1);
});

test('a reply cut into single bytes, sent slowly, is put back together', async (t) => {
  const server = await fake(t);
  server.handle('query-status', { noReply: true });
  const client = await connect(t, server);
  const sent = server.nextCommand('query-status');
  const pending = client.execute<{ status: string }>('query-status', undefined, { timeoutMs: 5000 });
  const cmd = await sent;
  // Multi-byte UTF-8 split across writes too: "ü" is two bytes.
  const bytes = Buffer.from(`${JSON.stringify({ return: { status: 'rünning' }, id: cmd.id })}\r\n`);
  for (const b of bytes) {
    cmd.conn.write(Buffer.from([b]));
    await delay(1);
  }
  assert.deepEqual(await pending, { status: 'rünning' });
  assert.equal(client.closed, false);
});

test('a partial line and then the peer hanging up rejects the pending command (no hang)', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const client = await connect(t, server);
  const sent = server.nextCommand('hang');
  const pending = client.execute('hang', undefined, { timeoutMs: 60_000 });
  pending.catch(() => undefined); // asserted below
  await sent;
  server.sendBytes(Buffer.from('{"return": {"half'));
  await delay(20);
  server.dropConnections();
  await assert.rejects(pending, (err: unknown) => {
    assert.ok(err instanceof QmpClosedError);
    assert.match(err.message, /'hang' was pending/);
    return true;
  });
});

test('an endless message without a newline is cut off at the limit: the client stops reading', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const limit = 1024 * 1024;
  const client = await connect(t, server, { maxMessageBytes: limit });
  const sent = server.nextCommand('hang');
  const pending = client.execute('hang');
  pending.catch(() => undefined); // asserted below
  const cmd = await sent;
  const before = process.memoryUsage().arrayBuffers;
  let peak = 0;
  // The peer would send 256 MiB; it gets to send only as much as the client reads before giving up.
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let written = 0;
  // Not events.once: it rejects on the 'error' the reset raises, and the reset is expected here.
  const closed = new Promise<void>((r) => cmd.conn.once('close', () => r()));
  const drained = (): Promise<void> => Promise.race([new Promise<void>((r) => cmd.conn.once('drain', () => r())), closed]);
  while (!cmd.conn.destroyed && written < 256 * 1024 * 1024) {
    const ok = cmd.conn.write(chunk);
    written += chunk.length;
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    if (!ok) await drained();
  }
  await closed;
  await assert.rejects(pending, (err: unknown) => {
    assert.ok(err instanceof QmpClosedError);
    assert.ok(err.cause instanceof QmpProtocolError);
    assert.match(err.cause.message, /exceeds 1048576 bytes/);
    return true;
  });
  assert.ok(written < 64 * 1024 * 1024, `the peer wrote ${written} bytes before the client hung up`);
  assert.ok(peak < 64 * 1024 * 1024, `buffers grew by ${peak} bytes`);
});

test('a peer that answers nothing: each command times out with a clear error, the client stays usable', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  server.handle('query-status', { return: { status: 'running' } });
  const client = await connect(t, server);
  const results = await Promise.allSettled([1, 2, 3].map(() => client.execute('hang', undefined, { timeoutMs: 50 })));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof QmpTimeoutError);
    assert.match(r.reason.message, /hang/);
  }
  assert.deepEqual(await client.execute('query-status'), { status: 'running' });
});

test('events with garbage payloads are tolerated, unknown messages are ignored', async (t) => {
  const server = await fake(t);
  server.handle('query-status', { return: { status: 'running' } });
  const client = await connect(t, server);
  const events: string[] = [];
  client.on('event', (e) => events.push(e.event));
  server.sendRaw('{"event":"STOP","data":[1,2,3],"timestamp":"never"}');
  server.sendRaw('{"something":"else"}');
  server.sendRaw('{"return":{},"id":"nobody-asked"}');
  assert.deepEqual(await client.execute('query-status'), { status: 'running' });
  assert.deepEqual(events, ['STOP']);
  assert.equal(client.closed, false);
});
