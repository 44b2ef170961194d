// Security (SPEC §1 token, §2) against the real daemon: bearer auth, public endpoints, DNS-rebinding Host
// check, Origin check on the event stream and WebSocket endpoints, the token file, and --port validation.
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/security.test.js
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { headOnly, rawRequest } from '../helpers/http.js';
import { holdsConnection } from '../helpers/proc.js';
import { runCommand, type RunResult } from '../helpers/run.js';
import { SseClient } from '../helpers/sse.js';
import { WsClient } from '../helpers/ws-client.js';

const EVIL = 'http://evil.example';

function assertProblem(r: { status: number; headers: Record<string, unknown>; json?: any; body?: any }, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  const p = r.json ?? r.body;
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  for (const k of ['type', 'title', 'detail']) assert.equal(typeof p[k], 'string', `problem has ${k}`);
}

/** `node bin/grove serve ...` that must exit by itself; its exit code and stderr. */
async function serveMustExit(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'grove-sec-port-'));
  try {
    return await runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), 'serve', '--data-dir', dataDir, ...args], {
      env: { ...process.env, GROVE_ACCEL: 'tcg', ...env }, timeoutMs: 15_000,
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('security', () => {
  let d: TestDaemon;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    d = await startDaemon();
  });

  after(async () => {
    for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } }
    await d?.cleanup();
  });

  it('answers a missing token with 401 problem+json, code UNAUTHORIZED and WWW-Authenticate', async () => {
    for (const [method, path, body] of [
      ['GET', '/vms'], ['GET', '/host'], ['GET', '/metrics'], ['POST', '/vms', '{"name":"x"}'], ['GET', '/vms/x/console'],
      ['DELETE', '/vms/x'], ['GET', '/events'], ['PUT', '/vms/order', '{"order":["x"]}'], ['GET', '/no/such/route'],
    ] as const) {
      const r = await rawRequest(d.port, { method, path: `/api/v1${path}`, ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}) });
      assertProblem(r, 401, 'UNAUTHORIZED');
      assert.match(String(r.headers['www-authenticate']), /^Bearer\b/i, `${method} ${path}: WWW-Authenticate`);
    }
    const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}/api/v1/events`);
    assert.equal(ws.kind, 'rejected', 'WebSocket upgrade without a token is refused');
    assert.equal((ws as { status: number }).status, 401);
  });

  it('answers a wrong token, a token of another length or another scheme with 401', async () => {
    const t = d.token;
    const flip = t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A');
    const variants = [
      `Bearer ${flip}`, // same length, one character off
      `Bearer ${t.slice(0, -1)}`, // shorter
      `Bearer ${t}x`, // longer
      `Bearer ${t.slice(0, 8)}`,
      `Bearer ${t}${t}`,
      'Bearer ',
      'Bearer',
      `Basic ${Buffer.from(`grove:${t}`).toString('base64')}`,
      t, // no scheme
      `Token ${t}`,
    ];
    for (const authorization of variants) {
      const r = await rawRequest(d.port, { path: '/api/v1/vms', headers: { authorization } });
      assertProblem(r, 401, 'UNAUTHORIZED');
      assert.ok(r.headers['www-authenticate'], `WWW-Authenticate for '${authorization.slice(0, 12)}…'`);
    }
    // A token in the query string is not a credential (it would end up in logs and browser history).
    assertProblem(await rawRequest(d.port, { path: `/api/v1/vms?token=${t}` }), 401, 'UNAUTHORIZED');
    const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}/api/v1/events`, { authorization: `Bearer ${flip}` });
    assert.equal(ws.kind === 'rejected' ? ws.status : ws.kind, 401);
    // The right token works; the auth scheme is case-insensitive (RFC 9110 §11.1).
    assert.equal((await rawRequest(d.port, { path: '/api/v1/vms', headers: { authorization: `Bearer ${t}` } })).status, 200);
    assert.equal((await rawRequest(d.port, { path: '/api/v1/vms', headers: { authorization: `bearer ${t}` } })).status, 200);
  });

  it('serves health, openapi.json, docs and the local Redoc bundle without a token', async () => {
    const health = await rawRequest(d.port, { path: '/api/v1/health' });
    assert.equal(health.status, 200);
    assert.equal(health.json.status, 'ok');
    const doc = await rawRequest(d.port, { path: '/api/v1/openapi.json' });
    assert.equal(doc.status, 200);
    assert.match(doc.json.openapi, /^3\.1\./);
    const docs = await rawRequest(d.port, { path: '/api/v1/docs' });
    assert.equal(docs.status, 200);
    assert.match(String(docs.headers['content-type']), /^text\/html/);
    const scripts = [...docs.body.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(scripts.includes('/api/v1/docs/redoc.standalone.js'), `docs load the local Redoc bundle (scripts: ${scripts.join(', ')})`);
    assert.ok(scripts.every((s) => !/^(https?:)?\/\//.test(s)), `no script from another host: ${scripts.join(', ')}`);
    assert.match(docs.body, /\/api\/v1\/openapi\.json/);
    const js = await rawRequest(d.port, { path: '/api/v1/docs/redoc.standalone.js' });
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.ok(js.body.length > 100_000, `the Redoc bundle is served (${js.body.length} bytes)`);
    // The public docs prefix opens nothing else.
    for (const path of ['/api/v1/docs/../vms', '/api/v1/docs/..%2fvms', '/api/v1/docs/%2e%2e/vms', '/api/v1/docs/x/../../vms']) {
      const r = await rawRequest(d.port, { path });
      assert.notEqual(r.status, 200, `${path} must not serve the VM list: ${r.body.slice(0, 100)}`);
      assert.ok(!Array.isArray(r.json), `${path} leaked a list`);
    }
  });

  it('refuses a foreign Host header with 403 even with the right token (DNS rebinding)', async () => {
    const authz = { authorization: `Bearer ${d.token}` };
    for (const host of ['evil.example', `evil.example:${d.port}`, `127.0.0.1.evil.example:${d.port}`, `localhost.evil.example:${d.port}`, '10.0.0.1', `192.168.1.10:${d.port}`, `[fe80::1]:${d.port}`]) {
      for (const path of ['/api/v1/vms', '/api/v1/health', '/api/v1/openapi.json', '/api/v1/events']) {
        const r = path === '/api/v1/events'
          ? await headOnly(d.port, { path, headers: { ...authz, host, accept: 'text/event-stream' } })
          : await rawRequest(d.port, { path, headers: { ...authz, host } });
        const json = 'json' in r ? r.json : JSON.parse(r.body);
        assertProblem({ ...r, json }, 403, 'FORBIDDEN');
      }
    }
    const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}/api/v1/events`, { ...authz, host: `evil.example:${d.port}` });
    assert.equal(ws.kind === 'rejected' ? ws.status : ws.kind, 403, 'WebSocket upgrade with a foreign Host');
    for (const host of [`localhost:${d.port}`, `127.0.0.1:${d.port}`, 'localhost', '127.0.0.1', `[::1]:${d.port}`, `LOCALHOST:${d.port}`]) {
      const r = await rawRequest(d.port, { path: '/api/v1/vms', headers: { ...authz, host } });
      assert.equal(r.status, 200, `Host ${host}: ${r.body}`);
    }
  });

  it('accepts a name configured with --allowed-host (Host and same-origin Origin), nothing else', async () => {
    const e = await startDaemon({ args: ['--allowed-host', 'grove.test'] });
    cleanups.push(() => e.cleanup());
    const authz = { authorization: `Bearer ${e.token}` };
    assert.equal((await rawRequest(e.port, { path: '/api/v1/vms', headers: { ...authz, host: `grove.test:${e.port}` } })).status, 200);
    assert.equal((await rawRequest(e.port, { path: '/api/v1/vms', headers: { ...authz, host: `127.0.0.1:${e.port}` } })).status, 200);
    assertProblem(await rawRequest(e.port, { path: '/api/v1/vms', headers: { ...authz, host: `other.test:${e.port}` } }), 403, 'FORBIDDEN');
    assertProblem(await rawRequest(e.port, { path: '/api/v1/vms', headers: { ...authz, host: `sub.grove.test:${e.port}` } }), 403, 'FORBIDDEN');
    const own = await headOnly(e.port, { path: '/api/v1/events', headers: { ...authz, host: `grove.test:${e.port}`, origin: `http://grove.test:${e.port}` } });
    assert.equal(own.status, 200, `same-origin event stream under the configured name: ${own.body}`);
    const cross = await headOnly(e.port, { path: '/api/v1/events', headers: { ...authz, host: `grove.test:${e.port}`, origin: `http://127.0.0.1:${e.port}` } });
    assert.equal(cross.status, 403, 'another origin, even a loopback one, is refused on the event stream');
  });

  it('refuses a foreign Origin on /api/v1/events (SSE and WebSocket) but not on REST routes', async () => {
    const authz = { authorization: `Bearer ${d.token}` };
    for (const origin of [EVIL, `${EVIL}:${d.port}`, 'null', `http://localhost:${d.port}.evil.example`, `https://127.0.0.1:${d.port}.evil.example`]) {
      const sse = await SseClient.open(`${d.api}/events`, { headers: { ...authz, origin } });
      assert.equal(sse.status, 403, `SSE with Origin ${origin}`);
      assertProblem({ status: sse.status, headers: sse.headers, json: await sse.json() }, 403, 'FORBIDDEN');
      const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}/api/v1/events`, { ...authz, origin });
      assert.equal(ws.kind === 'rejected' ? ws.status : ws.kind, 403, `WebSocket with Origin ${origin}`);
    }
    // The daemon's own origin is fine.
    const own = await SseClient.open(`${d.api}/events`, { headers: { ...authz, origin: `http://127.0.0.1:${d.port}` } });
    assert.equal(own.status, 200);
    own.close();
    const ownWs = await WsClient.connect(`ws://127.0.0.1:${d.port}/api/v1/events`, { ...authz, origin: `http://127.0.0.1:${d.port}` });
    assert.equal(ownWs.kind, 'open');
    (ownWs as { client: WsClient }).client.close();
    // REST routes take the same Origin (CORS does not apply to a bearer-token API called from scripts).
    const r = await fetch(`${d.api}/vms`, { headers: { ...authz, origin: EVIL } });
    assert.equal(r.status, 200);
    const h = await fetch(`${d.api}/health`, { headers: { origin: EVIL } });
    assert.equal(h.status, 200);
  });

  it('refuses a foreign Origin on the console WebSocket', async () => {
    await createGuestVm(d, 'sec-vm');
    const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}/api/v1/vms/sec-vm/console/ws`, { authorization: `Bearer ${d.token}`, origin: EVIL });
    assert.equal(ws.kind === 'rejected' ? ws.status : ws.kind, 403);
  });

  it('applies the Origin check to the route, however its path is spelled (trailing slash, percent-encoding)', async () => {
    // Same routes as above, reached through spellings the router accepts (ignoreTrailingSlash, %-decoding).
    const authz = { authorization: `Bearer ${d.token}` };
    const failures: string[] = [];
    for (const path of ['/api/v1/vms/sec-vm/console/ws/', '/api/v1/vms/sec-vm/console/%77s', '/api/v1/vms/sec-vm/consol%65/ws']) {
      const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}${path}`, { ...authz, origin: EVIL });
      const got = ws.kind === 'rejected' ? ws.status : ws.kind;
      if (ws.kind === 'open') ws.client.close();
      if (got !== 403) failures.push(`WebSocket ${path} with Origin ${EVIL}: ${got}`);
    }
    for (const path of ['/api/v1/%65vents', '/api/v1/event%73']) {
      const sse = await SseClient.open(`${d.url}${path}`, { headers: { ...authz, origin: EVIL } });
      if (sse.status !== 403) failures.push(`SSE ${path} with Origin ${EVIL}: ${sse.status}`);
      sse.close();
      const ws = await WsClient.connect(`ws://127.0.0.1:${d.port}${path}`, { ...authz, origin: EVIL });
      const got = ws.kind === 'rejected' ? ws.status : ws.kind;
      if (ws.kind === 'open') ws.client.close();
      if (got !== 403) failures.push(`WebSocket ${path} with Origin ${EVIL}: ${got}`);
    }
    assert.deepEqual(failures, [], 'the Origin check is bypassed');
  });

  it('closes the connection of a refused WebSocket upgrade (no leaked sockets, no hung shutdown)', async () => {
    // A refused upgrade (401/403 answered before the handshake) must not leave the socket open: after a
    // non-101 answer the connection is unusable, and an upgrade socket is outside the HTTP server's
    // keep-alive handling, so nobody else will ever close it.
    const cases: [string, string, string][] = [
      ['no token', `127.0.0.1:${d.port}`, ''],
      ['foreign Origin', `127.0.0.1:${d.port}`, `Authorization: Bearer ${d.token}\r\nOrigin: ${EVIL}\r\n`],
      ['foreign Host', 'evil.example', `Authorization: Bearer ${d.token}\r\n`],
    ];
    const failures: string[] = [];
    for (const [what, host, extra] of cases) {
      const s = connect(d.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
      let got = '';
      let serverClosed = false;
      s.on('data', (c: Buffer) => { got += c.toString('latin1'); });
      s.on('end', () => { serverClosed = true; });
      s.on('close', () => { serverClosed = true; });
      s.on('error', () => undefined);
      s.write(`GET /api/v1/events HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
        + `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
      await waitFor(`${what}: the refusal`, async () => /\r\n\r\n\{.*\}$/s.test(got), 10_000);
      assert.match(got, /^HTTP\/1\.1 40[13] /, `${what}: refused`);
      const closedByServer = await waitFor(`${what}: server closes`, async () => serverClosed, 3_000).then(() => true, () => false);
      if (!closedByServer) failures.push(`${what}: the daemon kept the refused upgrade connection open (answer said ${/connection: *(\S+)/i.exec(got)?.[1] ?? 'no Connection header'})`);
      // Even once the client hangs up, the daemon must let go of its end (no CLOSE_WAIT leak).
      const port = s.localPort!;
      s.destroy();
      const released = await waitFor(`${what}: daemon releases the socket`, async () => !holdsConnection(d.proc.pid!, d.port, port), 3_000).then(() => true, () => false);
      if (!released) failures.push(`${what}: after the client closed, the daemon still holds its socket (CLOSE_WAIT fd leak)`);
    }
    // And a client that keeps a refused connection open must not stop the daemon from shutting down.
    const e = await startDaemon();
    cleanups.push(() => e.cleanup());
    const s = connect(e.port, '127.0.0.1');
    s.on('error', () => undefined);
    let got = '';
    s.on('data', (c: Buffer) => { got += c.toString('latin1'); });
    s.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:${e.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await waitFor('the refusal', async () => got.startsWith('HTTP/1.1 401'), 10_000);
    const exited = new Promise<void>((resolve) => e.proc.once('exit', () => resolve()));
    e.proc.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    s.destroy();
    if (!stopped) failures.push('SIGTERM: the daemon did not exit within 10 s while a refused upgrade connection stayed open');
    assert.deepEqual(failures, []);
  });

  it('creates the token file with mode 0600 on first start, prints it once, and reuses it on restart', async () => {
    const file = join(d.dataDir, 'token');
    const st = statSync(file);
    assert.equal(st.mode & 0o777, 0o600, `token file mode ${(st.mode & 0o777).toString(8)}`);
    const token = readFileSync(file, 'utf8').trim();
    assert.equal(token, d.token);
    assert.ok(token.length >= 43, `256-bit token (${token.length} chars)`);
    assert.match(token, /^[A-Za-z0-9_-]+$/, 'token is URL-safe');
    assert.ok(d.output().includes(token), 'the new token is printed on first start');

    d = await d.restart();
    assert.equal(readFileSync(file, 'utf8').trim(), token, 'the token file is reused');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!d.output().includes(token), 'a reused token is not printed again');
    assert.equal((await d.call('GET', '/vms')).status, 200, 'the old token still works');
  });

  it('lets GROVE_TOKEN override the token file', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grove-sec-env-'));
    const fileToken = 'f'.repeat(43);
    writeFileSync(join(dataDir, 'token'), `${fileToken}\n`, { mode: 0o600 });
    const envToken = `env-token-${'e'.repeat(40)}`;
    const e = await startDaemon({ dataDir, env: { GROVE_TOKEN: envToken } });
    cleanups.push(() => e.cleanup());
    assert.equal(e.token, envToken);
    const ok = await rawRequest(e.port, { path: '/api/v1/vms', headers: { authorization: `Bearer ${envToken}` } });
    assert.equal(ok.status, 200);
    assertProblem(await rawRequest(e.port, { path: '/api/v1/vms', headers: { authorization: `Bearer ${fileToken}` } }), 401, 'UNAUTHORIZED');
    assert.ok(!e.output().includes(envToken), 'a token from the environment is not echoed');
    assert.equal(readFileSync(join(dataDir, 'token'), 'utf8').trim(), fileToken, 'the token file is left alone');
  });

  it('rejects --port / GROVE_PORT outside 1024–65535 or not a number: non-zero exit and a clear message', async () => {
    for (const [args, env] of [
      [['--port', '80'], {}], [['--port', '70000'], {}], [['--port', 'abc'], {}], [['--port', '1023'], {}],
      [['--port', '65536'], {}], [['--port', '0'], {}], [['--port=-1'], {}], [['--port', '8080.5'], {}],
      [['--port', '0x1000'], {}], [[], { GROVE_PORT: '80' }], [[], { GROVE_PORT: 'abc' }],
    ] as [string[], Record<string, string>][]) {
      const what = `${args.join(' ') || `GROVE_PORT=${env['GROVE_PORT']}`}`;
      const r = await serveMustExit(args, env);
      assert.notEqual(r.code, 0, `${what}: exit code`);
      assert.notEqual(r.code, null, `${what}: exited by itself`);
      assert.match(r.stderr, /port/i, `${what}: message names the port: ${r.stderr}`);
      assert.match(r.stderr, /1024/, `${what}: message gives the range: ${r.stderr}`);
      assert.match(r.stderr, /65535/, `${what}: message gives the range: ${r.stderr}`);
      assert.ok(r.stderr.split('\n').filter(Boolean).length <= 3, `${what}: a message, not a stack trace: ${r.stderr}`);
      assert.ok(!/listening/i.test(r.stdout), `${what}: did not start`);
    }
  });

  it('refuses to start with a token holding inner whitespace or under 16 characters, saying why', async () => {
    for (const [token, why] of [['first-half-token second-half', /whitespace/], ['tab\tinside-the-token', /whitespace/], ['short-token', /at least 16/]] as const) {
      const r = await serveMustExit([], { GROVE_TOKEN: token });
      assert.equal(r.code, 1, `${JSON.stringify(token)}: exit code`);
      assert.match(r.stderr, /GROVE_TOKEN/, `${JSON.stringify(token)}: names the source: ${r.stderr}`);
      assert.match(r.stderr, why, `${JSON.stringify(token)}: says why: ${r.stderr}`);
      assert.ok(!r.stderr.includes(token), 'the token itself is not echoed');
      assert.ok(!/listening/i.test(r.stdout), 'did not start');
    }
  });

  it('keeps the data dir 0700 and grove.db (with -wal, -shm), token and SSH key 0600; a loose data dir is tightened at start-up', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grove-sec-perm-'));
    chmodSync(dataDir, 0o755);
    const e = await startDaemon({ dataDir });
    cleanups.push(() => e.cleanup());
    // A cloud-init VM makes Grove's SSH key pair; the private half must be 0600 too.
    const vm = await createGuestVm(e, 'perm-vm', { cloudInit: {} });
    assert.equal(typeof vm.id, 'string');
    const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
    assert.equal(mode(dataDir), '700');
    for (const f of ['grove.db', 'grove.db-wal', 'grove.db-shm', 'token', 'ssh/id_ed25519']) assert.equal(mode(join(dataDir, f)), '600', f);

    // An older data dir with a world-readable database: tightened at the next start, and said so.
    await e.stop();
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'grove.db'), 0o644);
    chmodSync(join(dataDir, 'token'), 0o644);
    const again = await startDaemon({ dataDir });
    cleanups.push(() => again.cleanup());
    assert.equal(mode(dataDir), '700');
    for (const f of ['grove.db', 'grove.db-wal', 'grove.db-shm', 'token']) assert.equal(mode(join(dataDir, f)), '600', f);
    assert.match(again.output(), /permissions tightened/);
  });
});
