/**
 * End to end: bad input on every endpoint of the real daemon. The routes come from the daemon's own
 * OpenAPI document, and most bad inputs are derived from the request schemas it publishes (wrong types,
 * unknown fields, out-of-range numbers, too-long strings, broken patterns), so a new route or field is
 * covered without touching this file. Every answer must be a 4xx RFC 9457 problem — never a 5xx.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem, rawCall, startReady, type Res } from '../helpers/api.js';

type Schema = Record<string, any>;
interface Operation {
  method: string;
  path: string; // OpenAPI path below /api/v1, with {id}
  operationId: string;
  public: boolean;
  body?: Schema;
  query: { name: string; schema: Schema }[];
  hasId: boolean;
}

let d: TestDaemon;
let ops: Operation[] = [];
const seen: { what: string; status: number }[] = [];
const MISSING = 'no-such-vm';
const STOPPED = 'val-stopped';

/** Valid bodies per operation (the first one is used where one is needed); schema mutations start from these. */
const VALID_BODIES: Record<string, unknown[]> = {
  createVm: [{
    name: 'val-created', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: 'console=ttyS0', cpu: 1, memoryMB: 128, diskGB: 1,
    network: { mode: 'user', portForwards: [{ host: 40022, guest: 22, protocol: 'tcp' }] },
  }],
  reorderVms: [{ order: [STOPPED] }],
  stopAll: [{ timeoutSeconds: 5, force: false }],
  updateVm: [{ name: 'val-renamed', cpu: 1, memoryMB: 128, network: { mode: 'user', portForwards: [{ host: 40023, guest: 22, protocol: 'tcp' }] } }],
  startVm: [{ waitFor: { console: 'x', timeoutSeconds: 1 } }],
  stopVm: [{ timeoutSeconds: 1, force: true }],
  restartVm: [{ hard: false, timeoutSeconds: 1 }],
  sendConsole: [{ text: 'x' }, { keys: ['enter'] }],
  consoleExecute: [{ command: 'true', timeoutSeconds: 1 }],
  execInGuest: [{ argv: ['true'], timeoutSeconds: 1 }, { command: 'true' }],
  makeGuestDirectory: [{ path: '/tmp/x' }],
};
/** Query strings that make a wrongly accepted request end quickly (events would otherwise start streaming). */
const GUEST_PATH = { path: '/tmp/x' };
const BASE_QUERY: Record<string, Record<string, string>> = {
  events: { vm: MISSING }, listGuestFiles: GUEST_PATH, deleteGuestFile: GUEST_PATH, downloadGuestFile: GUEST_PATH, uploadGuestFile: GUEST_PATH,
};

before(async () => {
  d = await startDaemon();
  const doc = assertOk(await rawCall(d, 'GET', '/openapi.json', { auth: false }), 200, 'openapi');
  for (const [p, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const params: any[] = op.parameters ?? [];
      ops.push({
        method: method.toUpperCase(),
        path: p.replace(/^\/api\/v1/, ''),
        operationId: op.operationId,
        public: Array.isArray(op.security) && op.security.length === 0,
        body: op.requestBody?.content?.['application/json']?.schema,
        query: params.filter((x) => x.in === 'query').map((x) => ({ name: x.name, schema: x.schema })),
        hasId: params.some((x) => x.in === 'path' && x.name === 'id'),
      });
    }
  }
  await createGuestVm(d, STOPPED);
});

after(async () => { await d?.cleanup(); });

// ---- helpers -------------------------------------------------------------------------------------

function urlOf(op: Operation, id: string, query: Record<string, string> = {}): string {
  const qs = new URLSearchParams({ ...(BASE_QUERY[op.operationId] ?? {}), ...query }).toString();
  return op.path.replace('{id}', encodeURIComponent(id)) + (qs ? `?${qs}` : '');
}

async function send(what: string, method: string, path: string, opts: Parameters<typeof rawCall>[3] = {}): Promise<Res> {
  let r: Res;
  try {
    r = await rawCall(d, method, path, opts);
  } catch (e) {
    throw new Error(`${what}: ${method} ${path.slice(0, 200)} failed without an answer: ${(e as Error).message}`);
  }
  seen.push({ what: `${what}: ${method} ${path.slice(0, 120)}`, status: r.status });
  return r;
}

async function sendJson(what: string, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
  return send(what, method, path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
}

const bodyOps = (): Operation[] => ops.filter((o) => o.body !== undefined);
const validBody = (op: Operation): unknown => VALID_BODIES[op.operationId]?.[0] ?? minimalValid(op.body!);

/** A minimal value satisfying a schema, for operations this file has no hand-written body for. */
function minimalValid(s: Schema): unknown {
  if (s.anyOf) return minimalValid(s.anyOf[0]);
  if (s.enum) return s.enum[0];
  switch (s.type) {
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const r of s.required ?? []) o[r] = minimalValid(s.properties[r]);
      return o;
    }
    case 'array': return Array.from({ length: s.minItems ?? 0 }, () => minimalValid(s.items ?? {}));
    case 'integer': case 'number': return s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 1);
    case 'boolean': return false;
    case 'string': return 'a'.repeat(Math.max(1, s.minLength ?? 1));
    default: return null;
  }
}

/** The branch of an anyOf that a given value was written for (by its keys). */
function branchFor(s: Schema, value: unknown): Schema {
  if (!s.anyOf || typeof value !== 'object' || value === null) return s;
  const keys = Object.keys(value);
  return s.anyOf.find((b: Schema) => b.type === 'object' && keys.every((k) => k in (b.properties ?? {}))) ?? s.anyOf[0];
}

const isEnum = (s: Schema): boolean => Array.isArray(s.enum) || (Array.isArray(s.anyOf) && s.anyOf.every((b: Schema) => Array.isArray(b.enum)));

/** Values of the wrong JSON type for a schema (no coercion happens for bodies: "5" is not 5). */
function wrongTypes(s: Schema): { why: string; value: unknown }[] {
  if (isEnum(s)) return [{ why: 'not one of the allowed values', value: 'bogus-value' }, { why: 'number instead of enum', value: 42 }];
  switch (s.type) {
    case 'integer': return [{ why: 'string', value: '7' }, { why: 'fraction', value: 1.5 }, { why: 'boolean', value: true }, { why: 'null', value: null }];
    case 'number': return [{ why: 'string', value: '7' }, { why: 'boolean', value: true }, { why: 'null', value: null }];
    case 'string': return [{ why: 'number', value: 12345 }, { why: 'boolean', value: true }, { why: 'null', value: null }, { why: 'array', value: ['x'] }];
    case 'boolean': return [{ why: 'string', value: 'true' }, { why: 'number', value: 1 }, { why: 'null', value: null }];
    case 'object': return [{ why: 'string', value: 'x' }, { why: 'array', value: [] }, { why: 'number', value: 5 }];
    case 'array': return [{ why: 'string', value: 'x' }, { why: 'object', value: {} }, { why: 'number', value: 5 }];
    default: return [];
  }
}

const BAD_NAMES = ['../x', ' ', '', 'x'.repeat(64), '-lead', '.hidden', '_under', 'a/b', 'a b', 'é', 'a\nb', 'a;ls', '..', 'a\u0000b'];

/** Values breaking a schema's bounds: numbers outside [min,max], strings too short/long or off-pattern, bad array sizes. */
function outOfRange(s: Schema, sample: unknown): { why: string; value: unknown }[] {
  const out: { why: string; value: unknown }[] = [];
  if (s.type === 'integer' || s.type === 'number') {
    if (s.minimum !== undefined) out.push({ why: `below minimum ${s.minimum}`, value: s.minimum - 1 });
    if (s.exclusiveMinimum !== undefined) out.push({ why: `equal to exclusiveMinimum ${s.exclusiveMinimum}`, value: s.exclusiveMinimum }, { why: 'negative', value: s.exclusiveMinimum - 1 });
    if (s.maximum !== undefined) out.push({ why: `above maximum ${s.maximum}`, value: s.maximum + 1 }, { why: 'huge', value: 1e300 });
  }
  if (s.type === 'string') {
    if (s.minLength) out.push({ why: `shorter than ${s.minLength}`, value: 'x'.repeat(s.minLength - 1) });
    if (s.maxLength !== undefined) out.push({ why: `longer than ${s.maxLength}`, value: 'x'.repeat(s.maxLength + 1) });
    if (s.pattern) {
      const re = new RegExp(s.pattern, 'u');
      for (const n of BAD_NAMES) if (!re.test(n)) out.push({ why: `off-pattern ${JSON.stringify(n)}`, value: n });
    }
  }
  if (s.type === 'array') {
    if (s.minItems) out.push({ why: `fewer than ${s.minItems} items`, value: [] });
    if (s.maxItems !== undefined && Array.isArray(sample) && sample.length > 0) {
      out.push({ why: `more than ${s.maxItems} items`, value: Array.from({ length: s.maxItems + 1 }, () => sample[0]) });
    }
  }
  return out;
}

type Path = (string | number)[];
interface Mutation { why: string; body: unknown }

function setAt(root: unknown, path: Path, value: unknown, del = false): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as any;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k];
  const last = path[path.length - 1]!;
  if (del) delete cur[last]; else cur[last] = value;
  return copy;
}

/** Every schema violation reachable from a valid body: one mutation per field and rule. */
function mutations(schema: Schema, root: unknown, path: Path = [], value: unknown = root): Mutation[] {
  const s = branchFor(schema, value);
  const where = path.length ? path.join('.') : 'body';
  const out: Mutation[] = [];
  if (s.type === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    for (const r of s.required ?? []) {
      // A required field with a default is filled in by the validator: leaving it out is not an error.
      if (r in v && s.properties?.[r]?.default === undefined) out.push({ why: `${where}: required '${r}' missing`, body: setAt(root, [...path, r], undefined, true) });
    }
    if (s.additionalProperties === false) out.push({ why: `${where}: unknown field`, body: setAt(root, [...path, 'zzUnknownField'], 1) });
    if (s.minProperties) out.push({ why: `${where}: fewer than ${s.minProperties} properties`, body: setAt(root, path, {}) });
    for (const [p, ps] of Object.entries<Schema>(s.properties ?? {})) {
      const sample = v[p];
      for (const w of wrongTypes(ps)) out.push({ why: `${where}.${p}: ${w.why}`, body: setAt(root, [...path, p], w.value) });
      for (const w of outOfRange(ps, sample)) out.push({ why: `${where}.${p}: ${w.why}`, body: setAt(root, [...path, p], w.value) });
      if (sample !== undefined && (ps.type === 'object' || ps.type === 'array' || ps.anyOf)) out.push(...mutations(ps, root, [...path, p], sample));
    }
  }
  if (s.type === 'array' && Array.isArray(value) && value.length > 0 && s.items) {
    const item = s.items as Schema;
    for (const w of wrongTypes(item)) out.push({ why: `${where}[0]: ${w.why}`, body: setAt(root, [...path, 0], w.value) });
    for (const w of outOfRange(item, value[0])) out.push({ why: `${where}[0]: ${w.why}`, body: setAt(root, [...path, 0], w.value) });
    out.push(...mutations(item, root, [...path, 0], value[0]));
  }
  return out;
}

/** Query values that break a parameter's schema (query strings are text: "abc" for a number, etc.). */
function badQueryValues(s: Schema): { why: string; value: string }[] {
  const out: { why: string; value: string }[] = [];
  if (s.type === 'integer' || s.type === 'number') {
    out.push({ why: 'not a number', value: 'abc' }, { why: 'empty', value: '' });
    if (s.type === 'integer') out.push({ why: 'fraction', value: '1.5' });
    if (s.minimum !== undefined) out.push({ why: `below minimum ${s.minimum}`, value: String(s.minimum - 1) });
    if (s.maximum !== undefined) out.push({ why: `above maximum ${s.maximum}`, value: String(s.maximum + 1) });
  }
  if (s.type === 'boolean') out.push({ why: 'not a boolean', value: 'maybe' }, { why: 'number', value: '2' });
  if (Array.isArray(s.enum)) out.push({ why: 'not an allowed value', value: 'bogus-value' });
  if (s.type === 'string' && s.maxLength !== undefined) out.push({ why: `longer than ${s.maxLength}`, value: 'x'.repeat(s.maxLength + 1) });
  return out;
}

// ---- the document itself ---------------------------------------------------------------------------

test('the OpenAPI document lists the REST routes (sanity for everything below)', () => {
  const ids = ops.map((o) => o.operationId);
  for (const must of ['listVms', 'createVm', 'getVm', 'updateVm', 'deleteVm', 'startVm', 'stopVm', 'pauseVm', 'readConsole', 'consoleExecute', 'events']) {
    assert.ok(ids.includes(must), `operation ${must} missing from the OpenAPI document`);
  }
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  for (const op of bodyOps()) {
    assert.ok(op.body!.type === 'object' || Array.isArray(op.body!.anyOf), `${op.operationId}: body schema is an object`);
  }
});

// ---- authentication --------------------------------------------------------------------------------

test('every non-public operation refuses a missing, wrong or malformed token with 401', async () => {
  const protectedOps = ops.filter((o) => !o.public);
  assert.ok(protectedOps.length > 10);
  for (const op of protectedOps) {
    const url = urlOf(op, STOPPED);
    const body = op.body ? { body: JSON.stringify(validBody(op)), headers: { 'content-type': 'application/json' } } : {};
    for (const [label, auth] of [['missing', undefined], ['wrong', 'Bearer not-the-token'], ['basic', 'Basic Zm9vOmJhcg=='], ['empty bearer', 'Bearer ']] as const) {
      const r = await send(`auth ${label}`, op.method, url, { ...body, auth: false, headers: { ...(body.headers ?? {}), ...(auth ? { authorization: auth } : {}) } });
      assertProblem(r, 401, 'UNAUTHORIZED', `${op.operationId} with ${label} token`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/i, `${op.operationId}: WWW-Authenticate`);
    }
  }
});

// ---- unknown VMs -----------------------------------------------------------------------------------

test('every :id operation answers 404 VM_NOT_FOUND for an unknown name or id', async () => {
  const idOps = ops.filter((o) => o.hasId && o.operationId !== 'consoleWebSocket');
  assert.ok(idOps.length >= 10);
  for (const op of idOps) {
    // Webhook and download ids are not VMs: an unknown one is NOT_FOUND naming what was asked for.
    const code = /^\/(webhooks|downloads)\//.test(op.path) ? 'NOT_FOUND' : 'VM_NOT_FOUND';
    for (const id of [MISSING, randomUUID(), randomUUID().toUpperCase()]) {
      const r = op.body
        ? await sendJson('unknown vm', op.method, urlOf(op, id), validBody(op))
        : await send('unknown vm', op.method, urlOf(op, id));
      assertProblem(r, 404, code, `${op.operationId} on ${id}`);
    }
  }
  // The event filter names a VM too.
  assertProblem(await send('events vm', 'GET', `/events?vm=${MISSING}`), 404, 'VM_NOT_FOUND', 'events?vm=unknown');
  // An id longer than ids and names can be is refused before any lookup.
  for (const op of idOps.filter((o) => !o.body)) {
    assertProblem(await send('long id', op.method, urlOf(op, 'x'.repeat(129))), 400, 'VALIDATION_FAILED', `${op.operationId} with a 129-char id`);
  }
});

// ---- request bodies --------------------------------------------------------------------------------

test('malformed JSON bodies are 400 VALIDATION_FAILED on every operation that takes a body', async () => {
  const bad = ['{"a":', '{name: "x"}', '{"a":1}garbage', '{"a":1,}', "{'a':1}", '\u0000', 'nul', '{"a":"\\x"}', '[1,2'];
  for (const op of bodyOps()) {
    for (const text of bad) {
      const r = await send('malformed json', op.method, urlOf(op, MISSING), { body: text, headers: { 'content-type': 'application/json' } });
      assertProblem(r, 400, 'VALIDATION_FAILED', `${op.operationId} with ${JSON.stringify(text)}`);
    }
  }
});

test('bodies that are not objects are 400 on every operation that takes a body', async () => {
  for (const op of bodyOps()) {
    for (const v of [[], [validBody(op)], 'text', 42, null, true]) {
      const r = await sendJson('non-object body', op.method, urlOf(op, MISSING), v);
      assertProblem(r, 400, 'VALIDATION_FAILED', `${op.operationId} with body ${JSON.stringify(v)}`);
    }
  }
});

test('wrong types, unknown fields, missing fields and out-of-range values in bodies are 400 (derived from the schemas)', async () => {
  let n = 0;
  for (const op of bodyOps()) {
    const bases = VALID_BODIES[op.operationId] ?? [minimalValid(op.body!)];
    for (const base of bases) {
      const list = mutations(op.body!, base);
      // Something at the top level is always checked: an unknown field.
      list.push({ why: 'top-level unknown field', body: { ...(base as object), zzTopLevelUnknown: true } });
      for (const m of list) {
        const r = await sendJson(`mutation ${m.why}`, op.method, urlOf(op, MISSING), m.body);
        assertProblem(r, 400, 'VALIDATION_FAILED', `${op.operationId}: ${m.why} ${JSON.stringify(m.body).slice(0, 200)}`);
        n++;
      }
    }
  }
  assert.ok(n > 150, `only ${n} mutations generated`);
});

test('the named limits: ports, cpu, memory, disk, timeouts', async () => {
  const create = (extra: Record<string, unknown>) => sendJson('limits', 'POST', '/vms', { name: 'val-limits', kernel: 'vmlinuz', ...extra });
  const cases: [string, Record<string, unknown>][] = [
    ['host port 0', { network: { mode: 'user', portForwards: [{ host: 0, guest: 22, protocol: 'tcp' }] } }],
    ['host port 1023 (privileged)', { network: { mode: 'user', portForwards: [{ host: 1023, guest: 22, protocol: 'tcp' }] } }],
    ['host port 65536', { network: { mode: 'user', portForwards: [{ host: 65536, guest: 22, protocol: 'tcp' }] } }],
    ['guest port 0', { network: { mode: 'user', portForwards: [{ host: 40000, guest: 0, protocol: 'tcp' }] } }],
    ['guest port 70000', { network: { mode: 'user', portForwards: [{ host: 40000, guest: 70000, protocol: 'tcp' }] } }],
    ['protocol sctp', { network: { mode: 'user', portForwards: [{ host: 40000, guest: 22, protocol: 'sctp' }] } }],
    ['same host port twice', { network: { mode: 'user', portForwards: [{ host: 40000, guest: 22, protocol: 'tcp' }, { host: 40000, guest: 80, protocol: 'tcp' }] } }],
    ['forwards without a NIC', { network: { mode: 'none', portForwards: [{ host: 40000, guest: 22, protocol: 'tcp' }] } }],
    ['network mode bridge', { network: { mode: 'bridge' } }],
    ['cpu 0', { cpu: 0 }], ['cpu -1', { cpu: -1 }], ['cpu 65', { cpu: 65 }], ['cpu 1.5', { cpu: 1.5 }], ['cpu "2"', { cpu: '2' }],
    ['memory 0', { memoryMB: 0 }], ['memory 15', { memoryMB: 15 }], ['memory 2^53', { memoryMB: 2 ** 53 }],
    ['disk 0', { diskGB: 0 }], ['disk 65537', { diskGB: 65537 }],
    ['initrd without kernel', { kernel: undefined, initrd: 'initramfs.gz' }],
    ['cmdline without kernel', { kernel: undefined, cmdline: 'quiet' }],
    ['nothing to boot', { kernel: undefined }],
    ['distro with a kernel', { distro: 'debian-12' }],
    ['distro with an iso', { kernel: undefined, distro: 'debian-12', iso: 'x.iso' }],
  ];
  for (const [what, extra] of cases) assertProblem(await create(extra), 400, 'VALIDATION_FAILED', what);
  for (const t of [0, -1, 3601, 'soon']) {
    assertProblem(await sendJson('timeout', 'POST', `/vms/${STOPPED}/stop`, { timeoutSeconds: t }), 400, 'VALIDATION_FAILED', `stop timeout ${t}`);
    assertProblem(await sendJson('timeout', 'POST', `/vms/${STOPPED}/console/execute`, { command: 'true', timeoutSeconds: t }), 400, 'VALIDATION_FAILED', `execute timeout ${t}`);
    assertProblem(await sendJson('timeout', 'POST', `/vms/${STOPPED}/start`, { waitFor: { console: 'x', timeoutSeconds: t } }), 400, 'VALIDATION_FAILED', `waitFor timeout ${t}`);
  }
  // The same rules hold for PATCH.
  for (const [what, patch] of [['cpu 0', { cpu: 0 }], ['memory 15', { memoryMB: 15 }], ['host port 80', { network: { portForwards: [{ host: 80, guest: 80, protocol: 'tcp' }] } }], ['empty patch', {}], ['diskGB not patchable', { diskGB: 2 }]] as const) {
    assertProblem(await sendJson('patch limits', 'PATCH', `/vms/${STOPPED}`, patch), 400, 'VALIDATION_FAILED', `PATCH ${what}`);
  }
  // Nothing was created or changed by any of it.
  const list = assertOk(await send('list', 'GET', '/vms'), 200, 'list');
  assert.ok(!list.some((v: any) => v.name === 'val-limits'));
  const vm = list.find((v: any) => v.name === STOPPED);
  assert.equal(vm.cpu, 1);
  assert.deepEqual(vm.network, { mode: 'user', portForwards: [] });
});

test('names that break the name rule are 400 on create and on rename; edge-valid names are accepted', async () => {
  for (const name of BAD_NAMES) {
    assertProblem(await sendJson('bad name', 'POST', '/vms', { name, kernel: 'vmlinuz' }), 400, 'VALIDATION_FAILED', `create ${JSON.stringify(name)}`);
    assertProblem(await sendJson('bad name', 'PATCH', `/vms/${STOPPED}`, { name }), 400, 'VALIDATION_FAILED', `rename to ${JSON.stringify(name)}`);
  }
  assertProblem(await sendJson('no name', 'POST', '/vms', { kernel: 'vmlinuz' }), 400, 'VALIDATION_FAILED', 'create without name');
  assertProblem(await sendJson('dup', 'POST', '/vms', { name: STOPPED, kernel: 'vmlinuz' }), 409, 'CONFLICT', 'duplicate name');
  for (const name of ['x'.repeat(63), '7', 'a.b_c-D9']) {
    const r = await sendJson('good name', 'POST', '/vms', { name, kernel: 'vmlinuz' });
    assert.equal(r.status, 201, `create ${name}: ${JSON.stringify(r.body)}`);
    assert.equal((await send('cleanup', 'DELETE', `/vms/${encodeURIComponent(name)}`)).status, 204);
  }
});

test('bodies over 1 MiB are 413 PAYLOAD_TOO_LARGE on every operation that takes a body', async () => {
  for (const op of bodyOps()) {
    const big = JSON.stringify({ ...(validBody(op) as object), padding: 'x'.repeat(1024 * 1024 + 100) });
    const r = await send('huge body', op.method, urlOf(op, MISSING), { body: big, headers: { 'content-type': 'application/json' }, timeoutMs: 30_000 });
    assertProblem(r, 413, 'PAYLOAD_TOO_LARGE', `${op.operationId} with ${big.length} bytes`);
  }
});

test('a body refused for its size is read to its end: the client gets its 413 on a connection that stays open', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const big = 'x'.repeat(2 * 1024 * 1024);
  const sockets = new Set<unknown>();
  try {
    for (let i = 0; i < 3; i++) {
      const r = await new Promise<{ status: number | undefined; connection: string | undefined; code: string }>((resolve, reject) => {
        const req = httpRequest(`${d.api}/vms`, {
          method: 'POST', agent, headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json', 'content-length': String(big.length) },
        }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => { body += c.toString('utf8'); });
          res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, code: (JSON.parse(body) as { code: string }).code }));
        });
        req.on('socket', (sock) => sockets.add(sock));
        req.on('error', reject);
        req.end(big);
      });
      assert.deepEqual(r, { status: 413, connection: undefined, code: 'PAYLOAD_TOO_LARGE' });
    }
    assert.equal(sockets.size, 1, 'one connection served all three');
  } finally {
    agent.destroy();
  }
});

test('bodies that are not JSON (text/plain included) are refused with 415, never parsed as something else', async () => {
  for (const op of bodyOps()) {
    for (const ct of ['application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await send('content type', op.method, urlOf(op, MISSING), { body: 'name=x', headers: { 'content-type': ct } });
      assertProblem(r, 415, 'UNSUPPORTED_MEDIA_TYPE', `${op.operationId} as ${ct}`);
    }
    const plain = await send('text/plain', op.method, urlOf(op, MISSING), { body: JSON.stringify(validBody(op)), headers: { 'content-type': 'text/plain' } });
    assertProblem(plain, 415, 'UNSUPPORTED_MEDIA_TYPE', `${op.operationId} as text/plain`);
  }
});

// ---- query strings ---------------------------------------------------------------------------------

test('bad query parameters are 400 (derived from the schemas) and unknown ones too', async () => {
  let n = 0;
  for (const op of ops.filter((o) => o.query.length > 0)) {
    for (const q of op.query) {
      for (const b of badQueryValues(q.schema)) {
        const r = await send(`query ${q.name} ${b.why}`, op.method, urlOf(op, MISSING, { [q.name]: b.value }));
        assertProblem(r, 400, 'VALIDATION_FAILED', `${op.operationId} ?${q.name}=${b.value.slice(0, 40)} (${b.why})`);
        n++;
      }
    }
    const r = await send('unknown query', op.method, urlOf(op, MISSING, { zzbogus: '1' }));
    assertProblem(r, 400, 'VALIDATION_FAILED', `${op.operationId} with an unknown query parameter`);
  }
  assert.ok(n >= 10, `only ${n} query cases`);
  // The ones the brief names, spelled out.
  for (const q of ['since=-1', 'limit=abc', 'limit=0', 'limit=1048577', 'strip=html', 'since=1&since=2', 'since=1.5', 'strip=']) {
    assertProblem(await send('console query', 'GET', `/vms/${STOPPED}/console?${q}`), 400, 'VALIDATION_FAILED', `console?${q}`);
  }
  for (const q of ['limit=0', 'limit=201', 'limit=ten']) {
    assertProblem(await send('errors query', 'GET', `/vms/${STOPPED}/errors?${q}`), 400, 'VALIDATION_FAILED', `errors?${q}`);
  }
  for (const q of ['force=maybe', 'force=']) {
    assertProblem(await send('delete query', 'DELETE', `/vms/${STOPPED}?${q}`), 400, 'VALIDATION_FAILED', `delete?${q}`);
  }
  assert.equal((await send('still there', 'GET', `/vms/${STOPPED}`)).status, 200);
});

test('event filters: unknown types are 400, unknown VMs 404', async () => {
  for (const types of ['vm.bogus', 'nothing.*', 'vm.started,vm.bogus', 'vm', '**', 'vm.*.*']) {
    const r = await send('events types', 'GET', `/events?types=${encodeURIComponent(types)}`, { headers: { accept: 'text/event-stream' } });
    assertProblem(r, 400, 'VALIDATION_FAILED', `events?types=${types}`);
  }
  for (const q of ['since=-1', 'since=abc', `vm=${MISSING}&types=vm.*`]) {
    const r = await send('events query', 'GET', `/events?${q}`, { headers: { accept: 'text/event-stream' } });
    assertProblem(r, undefined, undefined, `events?${q}`);
  }
  assertProblem(await send('events vm', 'GET', `/events?vm=${MISSING}`, { headers: { accept: 'text/event-stream' } }), 404, 'VM_NOT_FOUND', 'events vm');
});

// ---- methods and URLs ------------------------------------------------------------------------------

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** Does a concrete path match a route template (`{id}` = one segment)? */
function matchesTemplate(template: string, path: string): boolean {
  const t = template.split('/');
  const p = path.split('/');
  return t.length === p.length && t.every((seg, i) => seg === '{id}' || seg === p[i]);
}

/**
 * Method+path pairs no route serves. `shadowed` marks pairs that another route template does serve
 * (PATCH /vms/order is PATCH /vms/{id} for a VM named "order"), where a 404 VM_NOT_FOUND is right.
 */
function wrongMethods(): { path: string; method: string; allowed: string[]; shadowed: boolean }[] {
  const byPath = new Map<string, Set<string>>();
  for (const o of ops) byPath.set(o.path, (byPath.get(o.path) ?? new Set()).add(o.method));
  const out: { path: string; method: string; allowed: string[]; shadowed: boolean }[] = [];
  for (const [p, allowed] of byPath) {
    const path = p.replace('{id}', STOPPED);
    for (const m of METHODS) {
      if (allowed.has(m)) continue;
      const shadowed = ops.some((o) => o.method === m && o.path !== p && matchesTemplate(o.path, path));
      out.push({ path, method: m, allowed: [...allowed], shadowed });
    }
  }
  return out;
}

test('wrong methods on every path are a 4xx problem, never a success', async () => {
  const cases = wrongMethods();
  assert.ok(cases.length > 20);
  for (const c of cases) {
    const r = await send('wrong method', c.method, c.path, c.method === 'GET' || c.method === 'DELETE' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } });
    if (c.shadowed) assertProblem(r, undefined, undefined, `${c.method} ${c.path}`);
    else assertProblem(r, 405, 'METHOD_NOT_ALLOWED', `${c.method} ${c.path}`);
  }
  assert.equal((await send('still there', 'GET', `/vms/${STOPPED}`)).status, 200);
});

test('a wrong method on an existing path is 405 METHOD_NOT_ALLOWED with an Allow header', async () => {
  const failures: string[] = [];
  for (const c of wrongMethods().filter((x) => !x.shadowed)) {
    const r = await send('405', c.method, c.path, c.method === 'GET' || c.method === 'DELETE' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } });
    const allow = (r.headers.get('allow') ?? '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
    if (r.status !== 405 || r.body?.code !== 'METHOD_NOT_ALLOWED' || !c.allowed.every((m) => allow.includes(m))) {
      failures.push(`${c.method} ${c.path} -> ${r.status} ${r.body?.code} allow=[${allow.join(',')}] (expected 405, allow ${c.allowed.join(',')})`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} wrong-method answers are not 405:\n${failures.slice(0, 8).join('\n')}`);
});

test('unknown routes and malformed URLs are problem+json too', async () => {
  assertProblem(await send('unknown route', 'GET', '/no/such/route'), 404, 'NOT_FOUND', 'unknown route');
  assertProblem(await send('unknown route', 'POST', `/vms/${STOPPED}/explode`, { body: '{}', headers: { 'content-type': 'application/json' } }), 404, 'NOT_FOUND', 'unknown action');
  // An encoded NUL or slash is just a name that does not exist.
  assertProblem(await send('odd id', 'GET', '/vms/%00'), 404, 'VM_NOT_FOUND', '%00');
  assertProblem(await send('odd id', 'GET', '/vms/a%2Fb'), 404, 'VM_NOT_FOUND', '%2F');
  assertProblem(await send('odd id', 'GET', '/vms/..%2F..%2Fetc'), 404, 'VM_NOT_FOUND', 'dot-dot');
  // Percent-encoding that does not decode: a client error, in the same problem format as every other.
  for (const p of ['/vms/%ff', '/vms/%zz', '/vms/%E0%A4%A']) {
    assertProblem(await send('bad url', 'GET', p), 400, undefined, `GET ${p}`);
  }
});

// ---- host paths ------------------------------------------------------------------------------------

test('host paths outside images/ and transfer/ are 403 FORBIDDEN_PATH, symlinks included; bad files are 4xx', async () => {
  const images = join(d.dataDir, 'images');
  const transfer = join(d.dataDir, 'transfer');
  mkdirSync(join(images, 'adir'), { recursive: true });
  symlinkSync('/etc/passwd', join(images, 'evil-passwd'));
  symlinkSync(join(d.dataDir, 'token'), join(images, 'evil-token'));
  symlinkSync('/etc', join(images, 'evil-dir'));
  writeFileSync(join(images, 'junk.qcow2'), 'this is not a disk image\n');
  const other = assertOk(await send('list', 'GET', `/vms/${STOPPED}`), 200, 'get');
  const otherDisk = join(d.dataDir, 'vms', other.id, 'disk.qcow2');

  const outside = ['/etc/passwd', '../../../../../etc/passwd', '../token', 'evil-passwd', 'evil-token', 'evil-dir/passwd',
    `${images}/../token`, otherDisk, join(images, 'evil-dir', 'hostname'), '/proc/self/environ', '.'];
  const fields: [string, (p: string) => Record<string, unknown>][] = [
    ['kernel', (p) => ({ kernel: p })],
    ['initrd', (p) => ({ kernel: 'vmlinuz', initrd: p })],
    ['image', (p) => ({ image: p })],
    ['iso', (p) => ({ iso: p })],
  ];
  let i = 0;
  for (const [field, mk] of fields) {
    for (const p of outside) {
      const r = await sendJson('forbidden path', 'POST', '/vms', { name: `val-path-${i++}`, ...mk(p) });
      assertProblem(r, 403, 'FORBIDDEN_PATH', `${field} = ${p}`);
    }
    // Missing inside an allowed folder: simply missing. Missing outside: the same 403 an existing file there gets.
    assertProblem(await sendJson('missing path', 'POST', '/vms', { name: `val-path-${i++}`, ...mk('no-such-file') }), 400, 'VALIDATION_FAILED', `${field} missing inside`);
    assertProblem(await sendJson('missing path', 'POST', '/vms', { name: `val-path-${i++}`, ...mk('/tmp/grove-definitely-missing/x') }), 403, 'FORBIDDEN_PATH', `${field} missing outside`);
  }
  // Inside the allowed folders: accepted, also through transfer/ and a `..` that stays inside.
  copyFileSync(join(images, 'vmlinuz'), join(transfer, 'k'));
  for (const [name, body] of [['val-ok-1', { kernel: join(transfer, 'k') }], ['val-ok-2', { kernel: 'adir/../vmlinuz' }]] as const) {
    const r = await sendJson('allowed path', 'POST', '/vms', { name, ...body });
    assert.equal(r.status, 201, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal((await send('cleanup', 'DELETE', `/vms/${name}`)).status, 204);
  }
  // Not a regular file, or not a disk image: the caller's mistake, so a 4xx (not a 500 or 502) and no VM.
  const badFiles: [string, Record<string, unknown>][] = [
    ['kernel is a directory', { kernel: 'adir' }],
    ['initrd is a directory', { kernel: 'vmlinuz', initrd: 'adir' }],
    ['iso is a directory', { iso: 'adir' }],
    ['image is a directory', { image: 'adir' }],
    ['image is not a qcow2 image', { image: 'junk.qcow2' }],
  ];
  const failures: string[] = [];
  for (const [what, body] of badFiles) {
    const name = `val-bad-${i++}`;
    const r = await sendJson('bad file', 'POST', '/vms', { name, ...body });
    try {
      assertProblem(r, undefined, undefined, what);
    } catch {
      failures.push(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      if (r.status === 201) await send('cleanup', 'DELETE', `/vms/${name}`);
    }
  }
  assert.deepEqual(failures, [], `bad files not refused with a 4xx:\n${failures.join('\n')}`);
  const left = assertOk(await send('list', 'GET', '/vms'), 200, 'list').filter((v: any) => v.name.startsWith('val-path-') || v.name.startsWith('val-bad-'));
  assert.deepEqual(left.map((v: any) => v.name), [], 'no VM was created from a refused path');
});

test('start with an invalid waitFor pattern is refused before anything starts', async () => {
  const vm = await createGuestVm(d, 'val-regex');
  try {
    for (const pattern of ['/[unclosed/', '/x/zz', '/(?<n>a)(?<n>b)/']) {
      const r = await sendJson('bad pattern', 'POST', '/vms/val-regex/start', { waitFor: { console: pattern, timeoutSeconds: 5 } });
      assertProblem(r, 400, 'VALIDATION_FAILED', `waitFor ${pattern}`);
      const got = assertOk(await send('get', 'GET', `/vms/${vm.id}`), 200, 'get');
      assert.equal(got.state, 'stopped', `a start refused with 400 (${pattern}) must not have started the VM`);
      if (got.state !== 'stopped') await send('cleanup', 'POST', `/vms/${vm.id}/force-stop`);
    }
  } finally {
    await send('cleanup', 'DELETE', '/vms/val-regex?force=true');
  }
});

// ---- wrong state -----------------------------------------------------------------------------------

test('wrong-state actions on a stopped VM are 409 INVALID_STATE naming the state', async () => {
  const STOPPED = 'val-state';
  await createGuestVm(d, STOPPED);
  const cases: [string, string, unknown][] = [
    ['POST', 'pause', {}], ['POST', 'resume', {}], ['POST', 'stop', {}], ['POST', 'stop', { force: true, timeoutSeconds: 1 }],
    ['POST', 'restart', {}], ['POST', 'restart', { hard: true }], ['POST', 'force-stop', {}],
    ['POST', 'console', { text: 'x' }], ['POST', 'console', { keys: ['enter'] }], ['POST', 'console/execute', { command: 'true' }],
  ];
  for (const [method, action, body] of cases) {
    const r = await sendJson('wrong state', method, `/vms/${STOPPED}/${action}`, body);
    assertProblem(r, 409, 'INVALID_STATE', `${action} ${JSON.stringify(body)} on a stopped VM`);
    assert.equal(r.body.state, 'stopped', `${action}: body.state`);
    assert.match(r.body.detail, /stopped/, `${action}: detail names the state`);
    if (r.body.allowedStates !== undefined) assert.ok(Array.isArray(r.body.allowedStates) && !r.body.allowedStates.includes('stopped'));
  }
  // The action without any body behaves the same.
  const nobody = await send('wrong state', 'POST', `/vms/${STOPPED}/pause`);
  assertProblem(nobody, 409, 'INVALID_STATE', 'pause without a body');
  assert.equal(nobody.body.state, 'stopped');
  assert.equal((await send('state', 'GET', `/vms/${STOPPED}`)).body.state, 'stopped');
});

test('wrong-state actions on a running VM are 409 INVALID_STATE naming the state', async () => {
  await createGuestVm(d, 'val-running');
  await startReady(d, 'val-running', { acpi: false });
  try {
    const cases: [string, string, unknown][] = [
      ['POST', '/vms/val-running/start', {}], ['POST', '/vms/val-running/resume', {}],
      ['PATCH', '/vms/val-running', { cpu: 2 }], ['PATCH', '/vms/val-running', { memoryMB: 512 }],
      ['PATCH', '/vms/val-running', { network: { mode: 'none' } }],
    ];
    for (const [method, path, body] of cases) {
      const r = await sendJson('wrong state running', method, path, body);
      assertProblem(r, 409, 'INVALID_STATE', `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(r.body.state, 'running');
    }
    const del = await send('delete running', 'DELETE', '/vms/val-running');
    assertProblem(del, 409, 'INVALID_STATE', 'delete running');
    assert.equal(del.body.state, 'running');
    const got = assertOk(await send('get', 'GET', '/vms/val-running'), 200, 'get');
    assert.equal(got.state, 'running');
    assert.equal(got.cpu, 1);
  } finally {
    await send('cleanup', 'DELETE', '/vms/val-running?force=true');
  }
});

// ---- the sum of it ---------------------------------------------------------------------------------

test('no request in this file was answered with a 5xx', () => {
  assert.ok(seen.length > 300, `only ${seen.length} requests made`);
  const fives = seen.filter((s) => s.status >= 500);
  assert.deepEqual(fives, [], `${fives.length} 5xx answers:\n${fives.slice(0, 10).map((f) => `${f.status} ${f.what}`).join('\n')}`);
});
