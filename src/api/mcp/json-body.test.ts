import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { readJsonBodies } from './json-body.js';

/** A bare app with the reader in a plugin, echoing what the route received as its body. */
async function echoApp(): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify({ bodyLimit: 64 });
  // As in the daemon (its auth hook): the route goes on a microtask later, once Node has buffered what arrived.
  app.addHook('onRequest', async () => undefined);
  await app.register(async (scope) => {
    readJsonBodies(scope);
    scope.post('/echo', async (req) => ({ body: req.body ?? 'none' }));
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as { port: number }).port };
}

/** One HTTP/1.1 exchange over a fresh socket, the request written in parts with a pause between them. */
async function exchange(port: number, parts: string[]): Promise<{ status: number; body: any }> {
  const socket = connect(port, '127.0.0.1');
  let raw = '';
  socket.on('data', (d: Buffer) => { raw += d.toString('utf8'); });
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  for (const [i, p] of parts.entries()) {
    if (i > 0) await sleep(50);
    socket.write(p);
  }
  await ended;
  const [head, body] = raw.split('\r\n\r\n', 2) as [string, string];
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) };
}

function post(body: string): string {
  return `POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const CHUNKED = 'POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';

test('a JSON body arrived whole, still arriving, or chunked is read by the app-wide rules', async () => {
  const { app, port } = await echoApp();
  try {
    assert.deepEqual(await exchange(port, [post('{"a":"é"}')]), { status: 200, body: { body: { a: 'é' } } });
    const slow = post('{"b":[1,2,3]}');
    assert.deepEqual(await exchange(port, [slow.slice(0, -5), slow.slice(-5)]), { status: 200, body: { body: { b: [1, 2, 3] } } });
    assert.deepEqual(await exchange(port, [`${CHUNKED}4\r\n{"c"\r\n`, '3\r\n:1}\r\n0\r\n\r\n']), { status: 200, body: { body: { c: 1 } } });
    assert.deepEqual(await exchange(port, [post('  ')]), { status: 200, body: { body: 'none' } }, 'blank: no body');
    assert.deepEqual(await exchange(port, [post('')]), { status: 200, body: { body: 'none' } }, 'empty: no body');
  } finally {
    await app.close();
  }
});

test('a JSON body too large, malformed or poisoning the prototype is refused with Fastify\'s errors', async () => {
  const { app, port } = await echoApp();
  try {
    const big = JSON.stringify({ s: 'x'.repeat(100) });
    assert.equal((await exchange(port, [post(big)])).body.code, 'FST_ERR_CTP_BODY_TOO_LARGE');
    assert.equal((await exchange(port, [`${CHUNKED}${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`])).body.code, 'FST_ERR_CTP_BODY_TOO_LARGE', 'no content-length');
    assert.equal((await exchange(port, [post('{"a":')])).body.code, 'FST_ERR_CTP_INVALID_JSON_BODY');
    const half = post('{"a":');
    assert.equal((await exchange(port, [half.slice(0, -2), half.slice(-2)])).body.code, 'FST_ERR_CTP_INVALID_JSON_BODY', 'arrived in parts');
    assert.equal((await exchange(port, [post('{"__proto__":{"x":1}}')])).body.code, 'FST_ERR_CTP_INVALID_JSON_BODY', 'prototype poisoning refused');
  } finally {
    await app.close();
  }
});
