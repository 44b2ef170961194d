// The web UI's sign-in (SPEC §2, §10) against the real daemon: the page and its assets, the session
// cookie, and its refusals (forged, expired, signed out, foreign Origin, another token).
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/web-session.test.js
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { assertProblem, rawCall } from '../helpers/api.js';
import { WsClient } from '../helpers/ws-client.js';
import { SessionKeys } from '../../src/api/rest/session.js';

const cookieOf = (setCookie: string | null): string => {
  assert.ok(setCookie, 'a Set-Cookie header');
  return setCookie.split(';')[0]!;
};

describe('web UI sign-in and session cookie', () => {
  let d: TestDaemon;
  let own: string;
  const session = (cookie: string, extra: Record<string, string> = {}): Record<string, string> => ({ cookie, ...extra });

  before(async () => {
    d = await startDaemon({ env: { GROVE_TOKEN: 'web-session-test-token-0123456789abcdef' } });
    own = `http://127.0.0.1:${d.port}`;
  });
  after(async () => { await d.cleanup(); });

  async function signIn(): Promise<string> {
    const r = await rawCall(d, 'POST', '/session', { auth: false, body: JSON.stringify({ token: d.token }), headers: { 'content-type': 'application/json', origin: own } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return cookieOf(r.headers.get('set-cookie'));
  }

  it('serves the page at / with a CSP and hashed assets with long caching', async () => {
    const r = await fetch(`${own}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/html/);
    assert.match(r.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const html = await r.text();
    const js = /src="(\/assets\/app-[^"]+\.js)"/.exec(html)?.[1];
    const css = /href="(\/assets\/app-[^"]+\.css)"/.exec(html)?.[1];
    assert.ok(js && css, html);
    const a = await fetch(`${own}${js}`);
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type')!, /^text\/javascript/);
    assert.match(a.headers.get('cache-control')!, /immutable/);
    const c = await fetch(`${own}${css}`);
    assert.match(c.headers.get('content-type')!, /^text\/css/);
    const missing = await fetch(`${own}/assets/..%2Ftoken`);
    assert.equal(missing.status, 404);
  });

  it('a wrong token gets no cookie', async () => {
    const r = await rawCall(d, 'POST', '/session', { auth: false, body: JSON.stringify({ token: 'nope' }), headers: { 'content-type': 'application/json', origin: own } });
    assertProblem(r, 401, 'UNAUTHORIZED');
    assert.equal(r.headers.get('set-cookie'), null);
  });

  it('sign-in from a foreign Origin is refused', async () => {
    const r = await rawCall(d, 'POST', '/session', { auth: false, body: JSON.stringify({ token: d.token }), headers: { 'content-type': 'application/json', origin: 'http://evil.example' } });
    assertProblem(r, 403, 'FORBIDDEN');
  });

  it('the cookie is HttpOnly, SameSite=Strict and expiring, and reads the API', async () => {
    const r = await rawCall(d, 'POST', '/session', { auth: false, body: JSON.stringify({ token: d.token }), headers: { 'content-type': 'application/json', origin: own } });
    const set = r.headers.get('set-cookie')!;
    assert.match(set, /HttpOnly/);
    assert.match(set, /SameSite=Strict/);
    assert.match(set, /Max-Age=\d+/);
    assert.ok(Date.parse(r.body.expiresAt) > Date.now());
    const list = await rawCall(d, 'GET', '/vms', { auth: false, headers: session(cookieOf(set)) });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, []);
  });

  it('a change rides on the cookie only from the daemon\'s own Origin', async () => {
    const cookie = await signIn();
    const body = JSON.stringify({ name: 'from-page', kernel: 'vmlinuz', initrd: 'initramfs.gz', memoryMB: 128, diskGB: 1 });
    const json = { 'content-type': 'application/json' };
    assertProblem(await rawCall(d, 'POST', '/vms', { auth: false, body, headers: session(cookie, { ...json, origin: 'http://evil.example' }) }), 403, 'FORBIDDEN');
    assertProblem(await rawCall(d, 'POST', '/vms', { auth: false, body, headers: session(cookie, json) }), 403, 'FORBIDDEN');
    const ok = await rawCall(d, 'POST', '/vms', { auth: false, body, headers: session(cookie, { ...json, origin: own }) });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal((await rawCall(d, 'DELETE', '/vms/from-page', { auth: false, headers: session(cookie, { origin: own }) })).status, 204);
  });

  it('scripts keep using the Bearer token unchanged', async () => {
    const r = await rawCall(d, 'GET', '/vms');
    assert.equal(r.status, 200);
  });

  it('a forged cookie is refused', async () => {
    const cookie = await signIn();
    const [name, value] = cookie.split('=');
    const parts = value!.split('.');
    const forged = `${name}=${[parts[0], String(Number(parts[1]) + 86_400), parts[2], parts[3]].join('.')}`;
    assertProblem(await rawCall(d, 'GET', '/vms', { auth: false, headers: session(forged) }), 401, 'UNAUTHORIZED');
    assertProblem(await rawCall(d, 'GET', '/vms', { auth: false, headers: session('grove_session=v1.9999999999.AAAA.BBBB') }), 401, 'UNAUTHORIZED');
  });

  it('an expired cookie is refused', async () => {
    // Signed with the daemon's own key (derived from the token), but already past its expiry.
    const expired = new SessionKeys(d.token, 60).issue(Date.now() - 120_000);
    assertProblem(await rawCall(d, 'GET', '/vms', { auth: false, headers: session(`grove_session=${expired.value}`) }), 401, 'UNAUTHORIZED');
  });

  it('the events WebSocket rides on the cookie from the own Origin only', async () => {
    const cookie = await signIn();
    const url = `ws://127.0.0.1:${d.port}/api/v1/events`;
    const foreign = await WsClient.connect(url, { cookie, origin: 'http://evil.example' });
    assert.equal(foreign.kind, 'rejected');
    assert.equal(foreign.kind === 'rejected' && foreign.status, 403);
    const mine = await WsClient.connect(url, { cookie, origin: own });
    assert.equal(mine.kind, 'open');
    if (mine.kind === 'open') mine.client.ws.close();
  });

  it('sign-out revokes the cookie even if it is replayed', async () => {
    const cookie = await signIn();
    const out = await rawCall(d, 'DELETE', '/session', { auth: false, headers: session(cookie, { origin: own }) });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie')!, /Max-Age=0/);
    assertProblem(await rawCall(d, 'GET', '/vms', { auth: false, headers: session(cookie) }), 401, 'UNAUTHORIZED');
  });

  it('a daemon restarted with a new token refuses the old cookies', async () => {
    const cookie = await signIn();
    await d.stop();
    const other = await startDaemon({ dataDir: d.dataDir, port: d.port, env: { GROVE_TOKEN: 'another-token-fedcba9876543210fedcba' } });
    try {
      assertProblem(await rawCall(other, 'GET', '/vms', { auth: false, headers: session(cookie) }), 401, 'UNAUTHORIZED');
    } finally {
      await other.stop();
    }
    d = await startDaemon({ dataDir: d.dataDir, port: d.port, env: { GROVE_TOKEN: 'web-session-test-token-0123456789abcdef' } });
  });
});
