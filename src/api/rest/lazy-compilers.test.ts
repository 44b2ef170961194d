import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { buildApp } from './app.js';
import type { ApiServices } from './context.js';
import { lazySerializerFactory, lazyValidatorCompiler } from './lazy-compilers.js';

const TOKEN = 't'.repeat(43);
// Registering routes reads only the version; no handler runs in these tests except health's.
const services = { version: '0.0.0-test', startedAt: Date.now() } as unknown as ApiServices;

test('a lazy validator compiles on its first use, once, and hands Fastify the errors of that call', () => {
  let compiles = 0;
  const ajv = new Ajv();
  const lazy = lazyValidatorCompiler<object>(({ schema }) => { compiles++; return ajv.compile(schema); });
  const validate = lazy({ schema: { type: 'object', properties: { n: { type: 'integer' } }, additionalProperties: false }, method: 'POST', url: '/x', httpPart: 'body' });
  assert.equal(compiles, 0);
  assert.equal(validate({ n: 1 }), true);
  assert.equal(validate.errors, null);
  assert.equal(validate({ n: 'one' }), false);
  assert.equal((validate.errors as { instancePath: string }[] | null)?.[0]?.instancePath, '/n');
  assert.equal(validate({ n: 2 }), true);
  assert.equal(validate.errors, null);
  assert.equal(compiles, 1);
});

test('a lazy serializer compiles on its first use and writes what fast-json-stringify writes', () => {
  const compile = lazySerializerFactory()({}, {});
  const serialize = compile({ schema: { type: 'object', properties: { a: { type: 'integer' } } }, method: 'GET', url: '/x', httpStatus: '200' });
  assert.equal(serialize({ a: 1, secret: 'dropped by the schema' }), '{"a":1}');
});

test('every route schema of the app compiles (eager mode, as Fastify compiles at start)', async () => {
  const app = await buildApp({ services, token: TOKEN, schemas: 'eager' });
  await app.ready();
  await app.close();
});

test('lazily compiled routes still validate and serialize: an unknown field is a 400, health answers through its schema', async () => {
  const app = await buildApp({ services, token: TOKEN });
  try {
    const bad = await app.inject({ method: 'POST', url: '/api/v1/vms', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: { name: 'a', surprise: 1 } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<{ code: string }>().code, 'VALIDATION_FAILED');
    const health = await app.inject({ method: 'GET', url: '/api/v1/health' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(Object.keys(health.json<object>()).sort(), ['status', 'uptimeSeconds', 'version']);
  } finally {
    await app.close();
  }
});

test('lazily compiled serializers of three routes resolve the same shared schema, in any order', async () => {
  // The shape of POST /downloads (one Download) and GET /downloads (a list of them): compiled one after
  // the other, the second once failed with "Cannot resolve ref Download#".
  const { Type } = await import('@sinclair/typebox');
  const item = Type.Object({ id: Type.String(), bytes: Type.Integer() }, { $id: 'Item' });
  // As the routes have it: a single answer is the shared schema itself ($id and all), a list refers to it.
  const list = Type.Array(Type.Ref(item));
  for (const order of [['one', 'list', 'again'], ['list', 'one', 'again']] as const) {
    const compile = lazySerializerFactory()({ Item: item }, {});
    const serializers = {
      one: compile({ schema: item, method: 'POST', url: '/x', httpStatus: '202' }),
      list: compile({ schema: list, method: 'GET', url: '/x', httpStatus: '200' }),
      again: compile({ schema: item, method: 'GET', url: '/x/:id', httpStatus: '200' }),
    };
    for (const k of order) {
      const data = k === 'list' ? [{ id: 'a', bytes: 1, extra: true }] : { id: 'a', bytes: 1, extra: true };
      assert.equal(serializers[k](data), k === 'list' ? '[{"id":"a","bytes":1}]' : '{"id":"a","bytes":1}', `${order.join(' then ')}: ${k}`);
    }
  }
});
