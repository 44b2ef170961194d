import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request as httpRequest } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { FastLanes, runOnBare } from './fast-lane.js';
import { jsonBodyReader, type JsonDone } from './json-body.js';
import { sendProblem, toProblem } from './problem.js';
import { accessCheck, registerSecurity } from './security.js';
import { errorMessage } from '../../util/errors.js';

const TOKEN = 'lane-token';
const LIMIT = 1024;

interface Harness {
  app: FastifyInstance;
  lanes: FastLanes;
  url: string;
  recorded: string[];
  bugs: unknown[];
}

/** A Fastify app wired to its lanes as app.ts wires them: the same access check, JSON parser and stats. */
async function harness(https?: { cert: Buffer; key: Buffer }): Promise<Harness> {
  const access = accessCheck({ token: TOKEN, allowedHosts: [] });
  const recorded: string[] = [];
  const bugs: unknown[] = [];
  let read: ((text: string, done: JsonDone) => void) | null = null;
  const lanes = new FastLanes({
    access,
    bodyLimit: LIMIT,
    parseJson: (text, done) => read!(text, done),
    record: (method, route, status) => recorded.push(`${method} ${route} ${status}`),
    logBug: (err) => bugs.push(err),
  });
  const app = Fastify({ serverFactory: lanes.serverFactory(), bodyLimit: LIMIT, ...(https ? ({ https } as object) : {}) });
  read = jsonBodyReader(app);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => read!(body as string, done));
  registerSecurity(app, access);
  app.setErrorHandler(async (err, req, reply) => sendProblem(reply, toProblem(err, req)));
  app.addHook('preClose', (done) => { lanes.close(); done(); });

  lanes.post('/echo', {}, (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ via: 'lane', body }));
  });
  app.post('/echo', async (req) => ({ via: 'fastify', body: req.body }));
  lanes.post('/guarded', { originCheck: true }, (_req, res) => { res.writeHead(204); res.end(); });
  app.post('/guarded', { config: { originCheck: true } }, async (_req, reply) => reply.code(204).send());
  const boom = (): never => { throw new Error('a bug'); };
  lanes.post('/boom', {}, boom);
  lanes.post('/later', {}, async () => { throw new Error('a later bug'); });
  // A Fastify route that writes on the bare response, as /mcp's does.
  app.post('/boom', (req, reply) => {
    reply.hijack();
    runOnBare(boom, req.raw, reply.raw, req.body, (err) => bugs.push(err));
  });

  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  return { app, lanes, url: `${https ? 'https' : 'http'}://127.0.0.1:${port}`, recorded, bugs };
}

const auth = { authorization: `Bearer ${TOKEN}` };

/** fetch will not send another Host; node:http will. */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'content-length': 2, host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end('{}');
  });
}
const json = { ...auth, 'content-type': 'application/json' };

describe('fast lanes', () => {
  let h: Harness;
  before(async () => { h = await harness(); });
  after(async () => { await h.app.close(); });

  const post = (path: string, body: RequestInit['body'], headers: Record<string, string> = json, init: RequestInit = {}) =>
    fetch(`${h.url}${path}`, { method: 'POST', headers, body, ...init });
  const via = async (r: Response): Promise<string> => ((await r.json()) as { via: string }).via;

  it('take a plain JSON POST to their path and record it as the route would be', async () => {
    h.recorded.length = 0;
    const r = await post('/echo', JSON.stringify({ a: [1, 2] }));
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { via: 'lane', body: { a: [1, 2] } });
    assert.deepEqual(h.recorded, ['POST /echo 200']);
    assert.equal(await via(await post('/echo', '{}', { ...auth, 'content-type': 'application/json; charset=UTF-8' })), 'lane');
    assert.deepEqual(await (await post('/echo', ' ')).json(), { via: 'lane', body: {} }, 'a blank body is "no options"');
  });

  it('leave everything that is not plainly fine to Fastify', async () => {
    assert.equal(await via(await post('/echo?x=1', '{}')), 'fastify', 'a query string');
    assert.equal(await via(await post('/echo', null, { ...json, 'content-length': '0' })), 'fastify', 'an empty body');
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{"b":2}')); c.close(); } });
    const chunked = await post('/echo', stream, json, { duplex: 'half' } as RequestInit);
    assert.deepEqual(await chunked.json(), { via: 'fastify', body: { b: 2 } }, 'a chunked body');
    assert.equal((await post('/echo', 'x', { ...auth, 'content-type': 'application/xml' })).status, 415, 'another content type');
    assert.equal((await post('/echo', JSON.stringify({ pad: 'x'.repeat(LIMIT) }))).status, 413, 'a body over the limit');
  });

  it('let Fastify answer every refusal, with its headers', async () => {
    const none = await post('/echo', '{}', { 'content-type': 'application/json' });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="grove"');
    assert.equal((await post('/echo', '{}', { ...json, authorization: 'Bearer wrong' })).status, 401);
    assert.equal(await statusWithHost(`${h.url}/echo`, 'evil.example'), 403, 'a foreign Host');
    assert.equal((await post('/guarded', '{}', { ...json, origin: 'http://evil.example' })).status, 403, 'a foreign Origin where the route checks it');
    assert.equal((await post('/guarded', '{}', { ...json, origin: h.url })).status, 204, 'its own Origin');
  });

  it('answer bad JSON with the very problem Fastify gives', async () => {
    const lane = await post('/echo', '{"a":');
    const fastify = await post('/echo?via=fastify', '{"a":');
    assert.equal(lane.status, 400);
    assert.equal(lane.headers.get('content-type'), fastify.headers.get('content-type'));
    assert.deepEqual(await lane.json(), await fastify.json());
    const poisoned = await post('/echo', '{"__proto__":{"x":1}}');
    assert.equal(poisoned.status, 400, 'prototype poisoning is refused as the app-wide parser refuses it');
  });

  it('answer a handler\'s failure with a 500 problem and report it', async () => {
    h.bugs.length = 0;
    for (const path of ['/boom', '/later', '/boom?on=fastify']) {
      const r = await post(path, '{}');
      assert.equal(r.status, 500, path);
      assert.equal(((await r.json()) as { code: string }).code, 'INTERNAL');
    }
    assert.deepEqual(h.bugs.map(errorMessage), ['a bug', 'a later bug', 'a bug']);
  });

  it('build the server Fastify would build (its keep-alive) and step aside once closing', async () => {
    assert.equal(h.app.server.keepAliveTimeout, 72_000);
    h.lanes.close();
    assert.equal(await via(await post('/echo', '{}')), 'fastify');
  });
});

describe('fast lanes over TLS', () => {
  let h: Harness;
  let dir: string;
  let ca: Buffer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grove-lane-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = readFileSync(join(dir, 'cert.pem'));
    h = await harness({ cert: ca, key: readFileSync(join(dir, 'key.pem')) });
  });
  after(async () => {
    await h.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serve the lane on the HTTPS server', async () => {
    const body = '{"t":1}';
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(`${h.url}/echo`, { method: 'POST', ca, headers: { ...json, 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.deepEqual(JSON.parse(answer), { via: 'lane', body: { t: 1 } });
  });
});
