import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DomainError, notFound } from '../../domain/errors.js';
import { StartResult } from '../schemas/vm.js';
import type { ApiServices } from '../rest/context.js';
import { HttpExchangeTransport, REQUEST_CANCELLED, parseMessages } from './http-exchange.js';
import { toJsonSchema } from './json-schema.js';
import { encodeWithKnownJson, withKnownJson } from '../known-json.js';
import { createMcpServer, McpTools } from './server.js';
import { mcpTools } from './tools.js';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';

const VM = {
  id: '0b5d7c43-7a55-4a0f-9d36-6f1f0d1c2b3a', name: 'web', state: 'stopped', cpu: 1, memoryMB: 256, diskGB: 1, distro: null,
  boot: {}, network: { mode: 'user', portForwards: [] }, order: 0, createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z', startedAt: null, accelerator: null, lastError: null, cloudInit: null,
};
const LIST = [VM];

/** Just enough of the services for the tools exercised here; the real ones are covered end to end. */
const fakeServices = {
  vms: {
    list: () => LIST,
    get: (ref: string) => { if (ref !== VM.name && ref !== VM.id) throw notFound(ref); return VM; },
    pause: async (ref: string) => { throw new DomainError('INVALID_STATE', `VM '${ref}' is stopped; pause needs running`, { state: 'stopped' }); },
    runtime: async () => { throw new TypeError('a bug'); },
  },
  agents: {
    list: () => LIST,
    details: (ref: string) => { if (ref !== VM.name && ref !== VM.id) throw notFound(ref); return VM; },
  },
  version: 'test',
} as unknown as ApiServices;

async function connected(bugs: unknown[] = []): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createMcpServer(new McpTools(mcpTools(fakeServices), (e) => bugs.push(e)), 'test').connect(serverSide);
  const client = new Client({ name: 'unit', version: '1' });
  await client.connect(clientSide);
  return client;
}

function problem(r: CallToolResult): any {
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent, undefined, 'a problem is not the tool\'s output shape');
  const t = r.content[0];
  assert.ok(t?.type === 'text');
  return JSON.parse(t.text);
}

test('toJsonSchema inlines shared schemas and drops $id and TypeBox symbols', () => {
  const s = toJsonSchema(StartResult) as any;
  assert.equal(s.properties.vm.type, 'object');
  assert.equal(s.properties.vm.properties.id.format, 'uuid');
  assert.equal(s.properties.vm.$id, undefined);
  assert.ok(!JSON.stringify(s).includes('$ref'));
  assert.deepEqual(Object.getOwnPropertySymbols(s), []);
  assert.deepEqual(s.required, ['vm'], 'waitFor stays optional');
});

test('every tool has object input and output schemas without $ref', () => {
  const tools = new McpTools(mcpTools(fakeServices));
  assert.ok(tools.list.length >= 20);
  for (const t of tools.list) {
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.equal(t.outputSchema?.type, 'object', t.name);
    assert.ok(!JSON.stringify(t).includes('$ref'), t.name);
  }
});

test('encodeWithKnownJson writes registered objects and texts from their recorded JSON', () => {
  const list = [{ a: 1, s: 'x'.repeat(2000) }];
  const json = JSON.stringify(list);
  const result = withKnownJson({ vms: withKnownJson(list, json) }, `{"vms":${json}}`);
  assert.deepEqual(encodeWithKnownJson(result), Buffer.from(JSON.stringify(result), 'utf8'));
  const message = { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: { vms: list } } };
  assert.deepEqual(encodeWithKnownJson(message), Buffer.from(JSON.stringify(message), 'utf8'));
  assert.deepEqual(encodeWithKnownJson({ small: 'é' }), Buffer.from('{"small":"é"}', 'utf8'));
  // Unregistered values are plain JSON.stringify, whatever text they hold.
  const other = { data: '\u0000grove-known-json-\u0000', n: [1, null, 'é'] };
  assert.deepEqual(encodeWithKnownJson(other), Buffer.from(JSON.stringify(other), 'utf8'));
});

test('parseMessages accepts JSON-RPC messages and batches, refuses anything else', () => {
  assert.deepEqual(parseMessages({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { ok: true, batch: false, messages: [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }] });
  const batch = parseMessages([{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', method: 'notifications/initialized' }]);
  assert.ok(batch.ok && batch.batch && batch.messages.length === 2);
  assert.equal(parseMessages({}).ok, false);
  assert.equal(parseMessages([]).ok, false);
  assert.equal(parseMessages({ jsonrpc: '1.0', id: 1, method: 'x' }).ok, false);
});

test('HttpExchangeTransport settles once every request of the POST is answered; notifications alone settle at once', async () => {
  const tools = new McpTools(mcpTools(fakeServices));
  const t1 = new HttpExchangeTransport();
  await createMcpServer(tools, 'test').connect(t1);
  const out = await t1.exchange([
    { jsonrpc: '2.0', id: 'a', method: 'ping' },
    { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'get_vm', arguments: { vm: 'web' } } },
  ]);
  assert.deepEqual(out.map((m) => ('id' in m ? m.id : null)).sort(), ['a', 'b']);
  const t2 = new HttpExchangeTransport();
  await createMcpServer(tools, 'test').connect(t2);
  assert.deepEqual(await t2.exchange([{ jsonrpc: '2.0', method: 'notifications/initialized' }]), []);
});

test('a request the server answers synchronously is answered, not dropped (unknown method, resources/list)', { timeout: 10_000 }, async () => {
  const tools = new McpTools(mcpTools(fakeServices));
  for (const method of ['resources/list', 'no/such/method']) {
    const t = new HttpExchangeTransport();
    await createMcpServer(tools, 'test').connect(t);
    const out = await t.exchange([{ jsonrpc: '2.0', id: 9, method }]);
    assert.equal(out.length, 1, method);
    assert.deepEqual({ id: (out[0] as any).id, code: (out[0] as any).error.code }, { id: 9, code: ErrorCode.MethodNotFound }, method);
  }
});

test('a batch that cancels its own request is answered: the cancelled request gets a cancellation error', { timeout: 10_000 }, async () => {
  const tools = new McpTools(mcpTools(fakeServices));
  const t = new HttpExchangeTransport();
  await createMcpServer(tools, 'test').connect(t);
  const out = await t.exchange([
    { jsonrpc: '2.0', id: 1, method: 'ping' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_vm', arguments: { vm: 'web' } } },
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2, reason: 'changed my mind' } },
  ]);
  const byId = new Map(out.map((m) => [(m as any).id, m as any]));
  assert.equal(out.length, 2);
  assert.deepEqual(byId.get(1).result, {});
  assert.equal(byId.get(2).error.code, REQUEST_CANCELLED);

  // Wherever the cancel stands in the body, it cancels that request; one answered synchronously keeps its answer.
  const t2 = new HttpExchangeTransport();
  await createMcpServer(tools, 'test').connect(t2);
  const out2 = await t2.exchange([
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3 } },
    { jsonrpc: '2.0', id: 3, method: 'ping' },
    { jsonrpc: '2.0', id: 4, method: 'no/such/method' },
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 4 } },
  ]);
  assert.deepEqual(out2.map((m) => [(m as any).id, (m as any).error.code]).sort(), [[3, REQUEST_CANCELLED], [4, ErrorCode.MethodNotFound]]);
});

test('a request nobody answers gets a timeout error at the exchange deadline', async () => {
  const t = new HttpExchangeTransport(20);
  const out = await t.exchange([{ jsonrpc: '2.0', id: 'x', method: 'tools/call', params: { name: 'get_vm' } }]);
  assert.deepEqual(out.map((m) => [(m as any).id, (m as any).error.code]), [['x', ErrorCode.RequestTimeout]]);
});

test('tools over the in-memory transport: results, DomainErrors as problems, bad arguments, unknown tools', async () => {
  const bugs: unknown[] = [];
  const client = await connected(bugs);
  const listed = await client.callTool({ name: 'list_vms', arguments: {} }) as CallToolResult;
  assert.deepEqual(listed.structuredContent, { vms: LIST });
  assert.deepEqual(listed.content, [{ type: 'text', text: JSON.stringify({ vms: LIST }) }]);

  const missing = problem(await client.callTool({ name: 'get_vm', arguments: { vm: 'nope' } }) as CallToolResult);
  assert.equal(missing.code, 'VM_NOT_FOUND');
  assert.equal(missing.status, 404, 'the same problem body REST answers with');

  const state = problem(await client.callTool({ name: 'pause_vm', arguments: { vm: 'web' } }) as CallToolResult);
  assert.equal(state.code, 'INVALID_STATE');
  assert.equal(state.state, 'stopped');

  const bad = problem(await client.callTool({ name: 'get_vm', arguments: {} }) as CallToolResult);
  assert.equal(bad.code, 'VALIDATION_FAILED');
  assert.match(bad.detail, /vm/);
  assert.equal(problem(await client.callTool({ name: 'get_vm', arguments: { vm: 'web', extra: 1 } }) as CallToolResult).code, 'VALIDATION_FAILED');

  const internal = problem(await client.callTool({ name: 'vm_runtime', arguments: { vm: 'web' } }) as CallToolResult);
  assert.equal(internal.code, 'INTERNAL');
  assert.ok(!internal.detail.includes('a bug'), 'internals stay in the log');
  assert.equal(bugs.length, 1);

  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === (ErrorCode.InvalidParams as number));
  await client.close();
});

test('every tool\'s argument schema compiles (validators are compiled on a tool\'s first call, not up front)', () => {
  const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats.default(ajv);
  const tools = new McpTools(mcpTools(fakeServices));
  assert.ok(tools.list.length > 10);
  for (const t of tools.list) assert.equal(typeof ajv.compile(t.inputSchema), 'function', t.name);
});

test('the tools/call fast path answers byte for byte what the SDK Server path answers', async () => {
  const bugs: unknown[] = [];
  const tools = new McpTools(mcpTools(fakeServices), (e) => bugs.push(e));
  const viaSdk = async (message: { jsonrpc: '2.0'; id: string | number; method: 'tools/call'; params: { name: string; arguments?: Record<string, unknown> } }): Promise<string> => {
    const t = new HttpExchangeTransport();
    await createMcpServer(tools, 'test').connect(t);
    const [answer] = await t.exchange([message]);
    return encodeWithKnownJson(answer).toString('utf8');
  };
  const viaFastPath = async (id: string | number, name: string, args?: Record<string, unknown>): Promise<string> => {
    const chunks = await tools.respond(id, name, args);
    return Buffer.concat(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c))).toString('utf8');
  };
  const calls: [string, Record<string, unknown> | undefined][] = [
    ['list_vms', {}], ['list_vms', undefined], ['get_vm', { vm: 'web' }], ['get_vm', { vm: 'nope' }], ['get_vm', {}],
    ['list_vms', { verbose: true }], ['pause_vm', { vm: 'web' }], ['vm_runtime', { vm: 'web' }], ['no_such_tool', {}],
  ];
  for (const id of [7, 'id "quoted" é']) {
    for (const [name, args] of calls) {
      // Ajv fills defaults into the arguments object: each path gets its own copy, as each request would.
      const copy = (): Record<string, unknown> | undefined => (args === undefined ? undefined : structuredClone(args));
      const fast = await viaFastPath(id, name, copy());
      const sdk = await viaSdk({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, ...(args === undefined ? {} : { arguments: copy() }) } });
      assert.equal(fast, sdk, `${name} ${JSON.stringify(args)} id ${JSON.stringify(id)}`);
      assert.equal(JSON.parse(fast).id, id);
    }
  }
  // The list answer is built once per list and kept; each answer still carries its own id.
  assert.equal(JSON.parse(await viaFastPath(1, 'list_vms', {})).id, 1);
  assert.equal(JSON.parse(await viaFastPath(2, 'list_vms', {})).id, 2);
  assert.equal(bugs.length, 4, 'vm_runtime\'s bug is logged once per call on either path');
});
