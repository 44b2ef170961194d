// The OpenAPI document the real daemon serves: OpenAPI 3.1, every route documented with request/response
// schemas and problem+json errors, response bodies that match it, and a clean `redocly lint`.
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/openapi.test.js
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { headOnly } from '../helpers/http.js';
import { runCommand, type RunResult } from '../helpers/run.js';
import { SseClient } from '../helpers/sse.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Every route the daemon serves, as [method, path under /api/v1, what its success answer is]. */
const ROUTES: [Method, string, 'json' | 'empty' | 'sse' | 'websocket' | 'binary'][] = [
  ['get', '/health', 'json'],
  ['get', '/host', 'json'],
  ['get', '/metrics', 'json'],
  ['get', '/vms', 'json'],
  ['post', '/vms', 'json'],
  ['get', '/vms/{id}', 'json'],
  ['patch', '/vms/{id}', 'json'],
  ['delete', '/vms/{id}', 'empty'],
  ['put', '/vms/order', 'json'],
  ['post', '/vms/stop-all', 'json'],
  ['post', '/vms/{id}/start', 'json'],
  ['post', '/vms/{id}/stop', 'json'],
  ['post', '/vms/{id}/force-stop', 'json'],
  ['post', '/vms/{id}/restart', 'json'],
  ['post', '/vms/{id}/pause', 'json'],
  ['post', '/vms/{id}/resume', 'json'],
  ['get', '/vms/{id}/runtime', 'json'],
  ['get', '/vms/{id}/errors', 'json'],
  ['get', '/vms/{id}/console', 'json'],
  ['post', '/vms/{id}/console', 'json'],
  ['delete', '/vms/{id}/console', 'json'],
  ['post', '/vms/{id}/console/execute', 'json'],
  ['get', '/vms/{id}/console/ws', 'websocket'],
  ['get', '/vms/{id}/ssh', 'json'],
  ['get', '/events', 'sse'],
  ['get', '/distros', 'json'],
  ['get', '/downloads', 'json'],
  ['post', '/downloads', 'json'],
  ['get', '/downloads/{id}', 'json'],
  ['delete', '/downloads/{id}', 'json'],
  ['delete', '/images/{distro}', 'empty'],
  ['post', '/vms/{id}/exec', 'json'],
  ['get', '/vms/{id}/ip', 'json'],
  ['get', '/vms/{id}/osinfo', 'json'],
  ['get', '/vms/{id}/files', 'json'],
  ['delete', '/vms/{id}/files', 'empty'],
  ['post', '/vms/{id}/files/mkdir', 'json'],
  ['get', '/vms/{id}/files/content', 'binary'],
  ['put', '/vms/{id}/files/content', 'json'],
  ['post', '/vms/launch', 'json'],
];

/** Routes whose request body is raw bytes (application/octet-stream), not JSON. */
const RAW_BODY = new Set(['put /vms/{id}/files/content']);

/** Routes whose operation can meet a VM in the wrong state (409 INVALID_STATE / CONFLICT). */
const CAN_CONFLICT = new Set(['post /vms', 'patch /vms/{id}', 'delete /vms/{id}', 'post /vms/{id}/start', 'post /vms/{id}/stop',
  'post /vms/{id}/force-stop', 'post /vms/{id}/restart', 'post /vms/{id}/pause', 'post /vms/{id}/resume', 'post /vms/{id}/console',
  'post /vms/{id}/console/execute', 'get /vms/{id}/ssh', 'delete /downloads/{id}', 'post /vms/{id}/exec', 'get /vms/{id}/ip', 'get /vms/{id}/osinfo', 'get /vms/{id}/files',
  'delete /vms/{id}/files', 'post /vms/{id}/files/mkdir', 'get /vms/{id}/files/content', 'put /vms/{id}/files/content', 'post /vms/launch']);

const PROBLEM_FIELDS = ['type', 'title', 'status', 'detail', 'code'];

/** Follows a local `$ref` (`#/components/...`) if there is one. */
function deref(doc: any, node: any): any {
  let n = node;
  for (let i = 0; n && typeof n.$ref === 'string' && i < 10; i++) {
    assert.ok(n.$ref.startsWith('#/'), `only local refs expected: ${n.$ref}`);
    n = n.$ref.slice(2).split('/').reduce((o: any, k: string) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.ok(n, `unresolved ${node.$ref}`);
  }
  return n;
}

function run(cmd: string, args: string[], opts: { env?: Record<string, string> } = {}): Promise<RunResult> {
  return runCommand(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...(opts.env ?? {}) } });
}

/** Redocly without phoning home (telemetry, update check). */
const REDOCLY_ENV = { REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' };

describe('OpenAPI document', () => {
  let d: TestDaemon;
  let doc: any;
  const tmp = mkdtempSync(join(tmpdir(), 'grove-openapi-'));

  before(async () => {
    d = await startDaemon();
  });

  after(async () => {
    await d?.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('is served without a token, as OpenAPI 3.1, with bearer auth declared', async () => {
    const r = await fetch(`${d.api}/openapi.json`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    doc = await r.json();
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    const health = (await d.call('GET', '/health')).body;
    assert.equal(doc.info.version, health.version);
    assert.equal(typeof doc.info.title, 'string');
    const schemes = Object.values(doc.components?.securitySchemes ?? {}) as any[];
    assert.ok(schemes.some((s) => s.type === 'http' && String(s.scheme).toLowerCase() === 'bearer'), 'a bearer security scheme');
    assert.ok(Array.isArray(doc.security) && doc.security.length > 0, 'auth required by default');
    assert.deepEqual(doc.paths['/api/v1/health'].get.security, [], 'health is documented as public');
  });

  it('documents every route with parameters, request and response schemas, and problem+json errors', () => {
    assert.ok(doc, 'document fetched');
    const problems: string[] = [];
    const opIds = new Set<string>();
    for (const [method, path, kind] of ROUTES) {
      const where = `${method.toUpperCase()} /api/v1${path}`;
      const op = doc.paths[`/api/v1${path}`]?.[method];
      if (!op) { problems.push(`${where}: not documented`); continue; }
      if (!op.operationId) problems.push(`${where}: no operationId`);
      else if (opIds.has(op.operationId)) problems.push(`${where}: duplicate operationId ${op.operationId}`);
      else opIds.add(op.operationId);
      if (!op.summary) problems.push(`${where}: no summary`);

      const params = [...(doc.paths[`/api/v1${path}`].parameters ?? []), ...(op.parameters ?? [])].map((p: any) => deref(doc, p));
      for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!)) {
        const p = params.find((x: any) => x.in === 'path' && x.name === name);
        if (!p || p.required !== true || !p.schema) problems.push(`${where}: path parameter ${name} missing, optional or without schema`);
      }
      for (const p of params) if (!p.schema) problems.push(`${where}: parameter ${p.name} has no schema`);

      if (RAW_BODY.has(`${method} ${path}`)) {
        if (!deref(doc, op.requestBody)?.content?.['application/octet-stream']) problems.push(`${where}: no application/octet-stream request body`);
      } else if (method === 'post' || method === 'put' || method === 'patch') {
        const body = deref(doc, op.requestBody);
        const schema = deref(doc, body?.content?.['application/json']?.schema);
        const variants = schema?.anyOf ?? schema?.oneOf ?? (schema ? [schema] : []);
        if (variants.length === 0 || !variants.every((v: any) => deref(doc, v).type === 'object')) problems.push(`${where}: no application/json request body schema`);
      }

      const responses = op.responses ?? {};
      const success = Object.keys(responses).filter((s) => /^(2\d\d|101)$/.test(s));
      if (success.length === 0) problems.push(`${where}: no success response`);
      for (const s of success) {
        const resp = deref(doc, responses[s]);
        if (kind === 'json') {
          const schema = deref(doc, resp.content?.['application/json']?.schema);
          if (!schema || !(schema.type || schema.anyOf || schema.oneOf || schema.allOf)) problems.push(`${where}: ${s} has no application/json schema`);
        } else if (kind === 'sse') {
          if (!resp.content?.['text/event-stream']) problems.push(`${where}: ${s} is not documented as text/event-stream`);
        } else if (kind === 'binary') {
          if (!resp.content?.['application/octet-stream']) problems.push(`${where}: ${s} is not documented as application/octet-stream`);
        } else if (kind === 'empty') {
          if (s !== '204') problems.push(`${where}: expected 204, got ${s}`);
        }
      }
      if (kind === 'websocket' && !success.includes('101')) problems.push(`${where}: WebSocket upgrade (101) not documented`);

      const errors = ['400', '500'];
      if (path !== '/health') errors.push('401');
      if (path.includes('{id}')) errors.push('404');
      if (CAN_CONFLICT.has(`${method} ${path}`)) errors.push('409');
      for (const s of errors) {
        const resp = deref(doc, responses[s]);
        const schema = deref(doc, resp?.content?.['application/problem+json']?.schema);
        if (!schema) { problems.push(`${where}: ${s} not documented as application/problem+json`); continue; }
        const missing = PROBLEM_FIELDS.filter((f) => !schema.properties?.[f] || !(schema.required ?? []).includes(f));
        if (missing.length > 0) problems.push(`${where}: ${s} problem schema lacks required ${missing.join(', ')}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('documents only routes the daemon actually serves', async () => {
    const auth = { authorization: `Bearer ${d.token}` };
    const missing: string[] = [];
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      for (const method of Object.keys(ops).filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))) {
        const url = path.replace(/\{id\}/g, 'no-such-vm');
        let status: number;
        let body: any;
        if (url === '/api/v1/events') {
          ({ status } = await headOnly(d.port, { path: url, headers: { ...auth, accept: 'text/event-stream' } }));
        } else {
          const r = await fetch(`${d.url}${url}`, {
            method: method.toUpperCase(), headers: { ...auth, ...(['post', 'put', 'patch'].includes(method) ? { 'content-type': 'application/json' } : {}) },
            ...(['post', 'put', 'patch'].includes(method) ? { body: '{"__probe":1}' } : {}),
          });
          status = r.status;
          body = await r.json().catch(() => null);
        }
        // The daemon's own "no route" answer is a 404 NOT_FOUND whose detail starts "no route" (VM lookups
        // answer VM_NOT_FOUND; other resources, e.g. webhooks, answer NOT_FOUND naming the missing id).
        if (status === 404 && body?.code === 'NOT_FOUND' && /^no route /.test(String(body.detail))) missing.push(`${method.toUpperCase()} ${path}: ${body.detail}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('describes what the daemon really answers (response bodies validate against the document)', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats.default(ajv);
    const check = (method: Method, path: string, status: number, body: unknown, type = 'application/json'): void => {
      const resp = deref(doc, doc.paths[`/api/v1${path}`][method].responses[String(status)]);
      assert.ok(resp, `${method} ${path}: ${status} documented`);
      const schema = deref(doc, resp.content?.[type]?.schema);
      assert.ok(schema, `${method} ${path}: ${status} ${type} schema`);
      const validate = ajv.compile({ ...schema, components: doc.components });
      assert.ok(validate(body), `${method.toUpperCase()} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
    };
    await createGuestVm(d, 'oa-vm');
    for (const [path, docPath] of [['/health', '/health'], ['/host', '/host'], ['/metrics', '/metrics'], ['/vms', '/vms'],
      ['/vms/oa-vm', '/vms/{id}'], ['/vms/oa-vm/runtime', '/vms/{id}/runtime'], ['/vms/oa-vm/errors', '/vms/{id}/errors'],
      ['/vms/oa-vm/console', '/vms/{id}/console'], ['/distros', '/distros'], ['/downloads', '/downloads']] as const) {
      const r = await d.call('GET', path);
      assert.equal(r.status, 200, `GET ${path}: ${JSON.stringify(r.body)}`);
      check('get', docPath, 200, r.body);
    }
    const patched = await d.call('PATCH', '/vms/oa-vm', { cpu: 2 });
    check('patch', '/vms/{id}', 200, patched.body);
    // Problems as documented: 404, 409, 400, 401.
    const nf = await d.call('GET', '/vms/no-such-vm');
    check('get', '/vms/{id}', 404, nf.body, 'application/problem+json');
    const conflict = await d.call('POST', '/vms/oa-vm/pause');
    assert.equal(conflict.status, 409);
    check('post', '/vms/{id}/pause', 409, conflict.body, 'application/problem+json');
    const bad = await d.call('POST', '/vms', { name: 'x', cpu: 'two' });
    assert.equal(bad.status, 400);
    check('post', '/vms', 400, bad.body, 'application/problem+json');
    const unauth = await fetch(`${d.api}/vms`);
    check('get', '/vms', 401, await unauth.json(), 'application/problem+json');

    // The event envelope schema in components matches what the stream sends.
    const envelopeSchema = Object.values<any>(doc.components?.schemas ?? {}).find((s) =>
      ['id', 'type', 'timestamp', 'data'].every((k) => s?.properties?.[k]) && (s.required ?? []).includes('timestamp'));
    assert.ok(envelopeSchema, 'the event envelope is described in components.schemas');
    const sse = await SseClient.open(`${d.api}/events?since=0`, { headers: { authorization: `Bearer ${d.token}` } });
    try {
      await sse.until('replayed events', () => sse.events.length >= 2);
      const validate = ajv.compile(envelopeSchema);
      for (const e of sse.events) assert.ok(validate(e), `event ${JSON.stringify(e).slice(0, 200)}: ${ajv.errorsText(validate.errors)}`);
    } finally {
      sse.close();
    }
  });

  it('documents bodies of action endpoints as optional, as the daemon treats them', async () => {
    // POST /vms/{id}/pause etc. work without any body (curl -X POST); a document that marks the body
    // required tells generated clients otherwise.
    const pause = await d.call('POST', '/vms/oa-vm/pause');
    assert.equal(pause.status, 409, `pause without a body gets past validation: ${JSON.stringify(pause.body)}`);
    const stopAll = await d.call('POST', '/vms/stop-all');
    assert.equal(stopAll.status, 200, `stop-all without a body: ${JSON.stringify(stopAll.body)}`);
    const wrong: string[] = [];
    for (const [method, path] of ROUTES.filter(([m]) => m === 'post')) {
      const op = doc.paths[`/api/v1${path}`]?.[method];
      const body = op && deref(doc, op.requestBody);
      const schema = body && deref(doc, body.content?.['application/json']?.schema);
      if (schema?.type === 'object' && (schema.required ?? []).length === 0 && body.required === true) wrong.push(`${method.toUpperCase()} ${path}`);
    }
    assert.deepEqual(wrong, [], 'request bodies with no required field are documented as required');
  });

  it('serves the reference page and Redoc\'s bundle from the build (no Redoc package at run time, no CDN)', async () => {
    const page = await fetch(`${d.api}/docs`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<redoc spec-url="\/api\/v1\/openapi.json"><\/redoc>/);
    assert.doesNotMatch(html, /https?:\/\//, 'nothing loaded from elsewhere');
    const js = await fetch(`${d.api}/docs/redoc.standalone.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'application/javascript');
    const body = await js.text();
    assert.ok(body.length > 500_000, `the whole bundle (${body.length} bytes)`);
    assert.match(body.slice(0, 2000), /Redoc|redoc/);
  });

  it('passes `redocly lint` (recommended ruleset) with zero errors', async (t) => {
    const file = join(tmp, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const r = await run(join(REPO_ROOT, 'node_modules', '.bin', 'redocly'), ['lint', file, '--extends', 'recommended', '--format', 'json', '--max-problems', '1000'], { env: REDOCLY_ENV });
    let report: any;
    try { report = JSON.parse(r.stdout); } catch { assert.fail(`redocly produced no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`); }
    const errors = report.problems.filter((p: any) => p.severity === 'error');
    const warnings = report.problems.filter((p: any) => p.severity === 'warn');
    const fmt = (p: any): string => `${p.ruleId}: ${p.message} (${p.location?.[0]?.pointer ?? ''})`;
    for (const w of warnings) t.diagnostic(`redocly warning ${fmt(w)}`);
    assert.equal(report.totals.errors, 0, `redocly errors:\n${errors.map(fmt).join('\n')}`);
    assert.equal(r.code, 0, `redocly exit code ${r.code}`);
  });

  it('scripts/lint-openapi.mjs starts a daemon of its own, lints its document and exits 0', async () => {
    const r = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'lint-openapi.mjs')], { env: REDOCLY_ENV });
    assert.equal(r.code, 0, `lint-openapi.mjs failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout + r.stderr, /0 errors|valid/i);
  });

  it('scripts/lint-openapi.mjs --url lints a running daemon, and fails on an invalid document', async () => {
    const ok = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'lint-openapi.mjs'), '--url', d.url], { env: REDOCLY_ENV });
    assert.equal(ok.code, 0, `lint-openapi.mjs --url failed:\n${ok.stdout}\n${ok.stderr}`);
    const broken = join(tmp, 'broken.json');
    writeFileSync(broken, JSON.stringify({ ...doc, paths: { ...doc.paths, '/x/{y}': { get: { responses: { 200: { description: 'x' } } } } }, info: { title: 'x' } }));
    const bad = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'lint-openapi.mjs'), '--file', broken], { env: REDOCLY_ENV });
    assert.notEqual(bad.code, 0, `an invalid document must fail the lint:\n${bad.stdout}\n${bad.stderr}`);
  });
});
