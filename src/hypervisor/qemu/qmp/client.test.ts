import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeQmpServer, type FakeQmpServerOptions } from '../../../../test/fakes/fake-qmp-server.js';
import { QmpClient, type QmpConnectOptions, type QmpEvent } from './client.js';
import { QmpClosedError, QmpCommandError, QmpProtocolError, QmpTimeoutError } from './errors.js';

async function fake(t: TestContext, opts?: FakeQmpServerOptions): Promise<FakeQmpServer> {
  const server = await FakeQmpServer.start(opts);
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, server: FakeQmpServer, opts?: QmpConnectOptions): Promise<QmpClient> {
  const client = await QmpClient.connect(server.socketPath, { connectTimeoutMs: 2000, ...opts });
  t.after(() => client.close());
  return client;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function countCloses(client: QmpClient): Array<Error | undefined> {
  const seen: Array<Error | undefined> = [];
  client.on('close', (err) => seen.push(err));
  return seen;
}

test('connect reads the greeting and negotiates capabilities', async (t) => {
  const server = await fake(t);
  const client = await connect(t, server);
  assert.deepEqual(client.version, { major: 7, minor: 2, micro: 3, package: 'fake-1' });
  assert.deepEqual(client.capabilities, ['oob']);
  assert.equal(client.closed, false);
  assert.equal(server.received[0]?.execute, 'qmp_capabilities');
  assert.equal(typeof server.received[0]?.id, 'number');
});

test('replies are matched by id even when they arrive out of order', async (t) => {
  const server = await fake(t);
  const gates = new Map<string, ReturnType<typeof deferred<void>>>();
  server.handle('work', async (cmd) => {
    const name = String(cmd.arguments?.name);
    const gate = deferred<void>();
    gates.set(name, gate);
    await gate.promise;
    return { return: { name } };
  });
  const client = await connect(t, server);
  const results = ['a', 'b', 'c'].map((name) => client.execute<{ name: string }>('work', { name }));
  while (gates.size < 3) await delay(5);
  for (const name of ['c', 'a', 'b']) {
    gates.get(name)!.resolve();
    await delay(5);
  }
  assert.deepEqual(await Promise.all(results), [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
  const ids = server.received.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length, 'ids are unique');
});

test('QEMU errors become QmpCommandError with class, desc and command', async (t) => {
  const server = await fake(t);
  server.handle('block_resize', { error: { class: 'DeviceNotFound', desc: "Cannot find device='x' nor node-name='x'" } });
  const client = await connect(t, server);
  await assert.rejects(client.execute('block_resize', { 'node-name': 'x', size: 1 }), (err: unknown) => {
    assert.ok(err instanceof QmpCommandError);
    assert.equal(err.command, 'block_resize');
    assert.equal(err.errorClass, 'DeviceNotFound');
    assert.equal(err.desc, "Cannot find device='x' nor node-name='x'");
    return true;
  });
  await assert.rejects(client.execute('no-such-thing'), { name: 'QmpCommandError', errorClass: 'CommandNotFound' });
  assert.equal(client.closed, false);
});

test('a timed-out command rejects and its late reply is ignored', async (t) => {
  const server = await fake(t);
  server.handle('slow', async () => {
    await delay(150);
    return { return: 'late' };
  });
  server.handle('slower', async () => {
    await delay(300);
    return { return: 'slower' };
  });
  const client = await connect(t, server);
  await assert.rejects(client.execute('slow', undefined, { timeoutMs: 30 }), (err: unknown) => {
    assert.ok(err instanceof QmpTimeoutError);
    assert.equal(err.command, 'slow');
    assert.equal(err.timeoutMs, 30);
    return true;
  });
  // Pending while the stale "late" reply arrives: it must not be resolved by it.
  assert.equal(await client.execute('slower'), 'slower');
  assert.equal(client.closed, false);
});

test('events are emitted as "event" and "event:<NAME>"', async (t) => {
  const server = await fake(t);
  const client = await connect(t, server);
  const all: QmpEvent[] = [];
  const stops: QmpEvent[] = [];
  client.on('event', (e) => all.push(e));
  client.on('event:STOP', (e) => stops.push(e));
  const shutdown = once(client, 'event:SHUTDOWN');
  server.sendEvent('STOP');
  server.sendEvent('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' }, { seconds: 10, microseconds: 20 });
  const [ev] = (await shutdown) as [QmpEvent];
  assert.deepEqual(ev, { event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' }, timestamp: { seconds: 10, microseconds: 20 } });
  assert.deepEqual(
    all.map((e) => e.event),
    ['STOP', 'SHUTDOWN'],
  );
  assert.equal(stops.length, 1);
  assert.deepEqual(stops[0]?.data, {}, 'payload-less events get an empty data object');
});

test('waitForEvent honours predicate, timeout and abort', async (t) => {
  const server = await fake(t);
  const client = await connect(t, server);
  const waiting = client.waitForEvent('JOB_STATUS_CHANGE', { timeoutMs: 2000, predicate: (d) => d.status === 'concluded' });
  server.sendEvent('JOB_STATUS_CHANGE', { id: 'j', status: 'running' });
  server.sendEvent('JOB_STATUS_CHANGE', { id: 'j', status: 'concluded' });
  assert.equal((await waiting).data.status, 'concluded');

  await assert.rejects(client.waitForEvent('NEVER', { timeoutMs: 20 }), (err: unknown) => {
    assert.ok(err instanceof QmpTimeoutError);
    assert.equal(err.command, 'event:NEVER');
    return true;
  });

  const ac = new AbortController();
  const aborted = client.waitForEvent('NEVER', { timeoutMs: 2000, signal: ac.signal });
  ac.abort(new Error('stop waiting'));
  await assert.rejects(aborted, /stop waiting/);
});

test('QEMU dropping the connection rejects pending commands and emits close once', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const client = await connect(t, server);
  const closes = countCloses(client);
  const sent = server.nextCommand('hang');
  const pending = assert.rejects(client.execute('hang'), (err: unknown) => {
    assert.ok(err instanceof QmpClosedError);
    assert.match(err.message, /'hang' was pending/);
    return true;
  });
  const waiter = assert.rejects(client.waitForEvent('STOP', { timeoutMs: 5000 }), QmpClosedError);
  await sent;
  server.dropConnections();
  await pending;
  await waiter;
  assert.equal(client.closed, true);
  await client.close();
  await delay(20);
  assert.equal(closes.length, 1);
  assert.ok(closes[0] instanceof QmpClosedError, 'a peer-initiated close carries an error');
});

test('close() rejects pending commands and emits close once without an error', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const client = await connect(t, server);
  const closes = countCloses(client);
  const sent = server.nextCommand('hang');
  const pending = assert.rejects(client.execute('hang'), QmpClosedError);
  await sent;
  const disconnected = once(server, 'disconnect');
  await client.close();
  await client.close();
  await pending;
  await disconnected;
  assert.deepEqual(closes, [undefined]);
});

test('execute and waitForEvent after close reject with QmpClosedError', async (t) => {
  const server = await fake(t);
  const client = await connect(t, server);
  await client.close();
  await assert.rejects(client.execute('query-status'), QmpClosedError);
  await assert.rejects(client.waitForEvent('STOP', { timeoutMs: 100 }), QmpClosedError);
  assert.equal(server.received.filter((c) => c.execute === 'query-status').length, 0);
});

test('writes racing a dead peer end in close, not in uncaught socket errors', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const client = await connect(t, server);
  const closes = countCloses(client);
  server.dropConnections();
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.execute('hang')));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof QmpClosedError);
  }
  await delay(20);
  assert.equal(closes.length, 1);
});

test('an oversize message is a protocol error that closes the connection', async (t) => {
  const server = await fake(t);
  server.handle('hang', { noReply: true });
  const client = await connect(t, server, { maxMessageBytes: 1024 });
  const closes = countCloses(client);
  const events: string[] = [];
  client.on('event', (e) => events.push(e.event));
  const sent = server.nextCommand('hang');
  const pending = client.execute('hang');
  pending.catch(() => {}); // asserted below
  await sent;
  // No newline: the client must give up without waiting for the line to end.
  server.sendBytes(Buffer.from(`{"event":"RESUME","timestamp":{"seconds":1,"microseconds":2}}\r\n${'x'.repeat(4096)}`));
  await assert.rejects(pending, (err: unknown) => {
    assert.ok(err instanceof QmpClosedError);
    assert.ok(err.cause instanceof QmpProtocolError);
    return true;
  });
  assert.deepEqual(events, ['RESUME'], 'lines before the oversize one are still delivered');
  assert.equal(closes.length, 1);
  assert.ok(closes[0] instanceof QmpProtocolError);
  assert.match(closes[0].message, /exceeds 1024 bytes/);
});

test('a non-JSON line is a protocol error that closes the connection', async (t) => {
  const server = await fake(t);
  const client = await connect(t, server);
  const closed = once(client, 'close');
  server.sendRaw('this is not json');
  const [err] = await closed;
  assert.ok(err instanceof QmpProtocolError);
  assert.equal(client.closed, true);
});

for (const [label, greeting] of [
  ['garbage', 'garbage'],
  ['a reply instead of a greeting', '{"return": {}}'],
  ['a greeting without a version', '{"QMP": {"capabilities": []}}'],
] as const) {
  test(`connect rejects a bad greeting (${label}) and closes the socket`, async (t) => {
    const server = await fake(t, { greeting });
    const disconnected = once(server, 'disconnect');
    await assert.rejects(QmpClient.connect(server.socketPath, { connectTimeoutMs: 2000 }), QmpProtocolError);
    await disconnected;
    assert.equal(server.connections.size, 0);
  });
}

test('connect times out when QEMU never greets (monitor busy with another client)', async (t) => {
  const server = await fake(t, { greeting: null });
  const disconnected = once(server, 'disconnect');
  const started = Date.now();
  await assert.rejects(QmpClient.connect(server.socketPath, { connectTimeoutMs: 150 }), (err: unknown) => {
    assert.ok(err instanceof QmpTimeoutError);
    assert.equal(err.command, 'connect');
    assert.match(err.message, /no QMP greeting/);
    return true;
  });
  assert.ok(Date.now() - started < 1000);
  await disconnected;
});

test('connect surfaces a rejected qmp_capabilities', async (t) => {
  const server = await fake(t);
  server.handle('qmp_capabilities', { error: { class: 'GenericError', desc: 'nope' } });
  await assert.rejects(QmpClient.connect(server.socketPath, { connectTimeoutMs: 2000 }), {
    name: 'QmpCommandError',
    command: 'qmp_capabilities',
  });
});

test('connect retries until the socket appears', async (t) => {
  const server = await FakeQmpServer.create();
  t.after(() => server.close());
  const connecting = QmpClient.connect(server.socketPath, { connectTimeoutMs: 3000 });
  await delay(150);
  await server.listen();
  const client = await connecting;
  t.after(() => client.close());
  assert.equal(client.version.major, 7);
});

test('connect retries while a stale socket file refuses connections', async (t) => {
  const server = await FakeQmpServer.create();
  t.after(() => server.close());
  await writeFile(server.socketPath, '');
  const connecting = QmpClient.connect(server.socketPath, { connectTimeoutMs: 3000 });
  await delay(100);
  await rm(server.socketPath);
  await server.listen();
  const client = await connecting;
  t.after(() => client.close());
  assert.equal(client.closed, false);
});

test('connect gives up with QmpTimeoutError when the socket never appears', async (t) => {
  const server = await FakeQmpServer.create();
  t.after(() => server.close());
  await assert.rejects(QmpClient.connect(server.socketPath, { connectTimeoutMs: 100 }), (err: unknown) => {
    assert.ok(err instanceof QmpTimeoutError);
    assert.match(err.message, /ENOENT/);
    return true;
  });
});
