import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { accessCheck, registerSecurity } from './security.js';
import { SessionKeys } from './session.js';

const TOKEN = 'unit-token';

async function app() {
  const sessions = new SessionKeys(TOKEN);
  const a = Fastify();
  registerSecurity(a, accessCheck({ token: TOKEN, allowedHosts: [], sessions }));
  a.get('/thing', async () => ({ ok: true }));
  a.post('/thing', async () => ({ changed: true }));
  await a.ready();
  return { a, cookie: `grove_session=${sessions.issue().value}`, sessions };
}

const host = '127.0.0.1:22100';

describe('security hook with session cookies', () => {
  it('a read rides on the cookie', async () => {
    const { a, cookie } = await app();
    const r = await a.inject({ method: 'GET', url: '/thing', headers: { host, cookie } });
    assert.equal(r.statusCode, 200);
  });

  it('a change on the cookie needs the daemon\'s own Origin', async () => {
    const { a, cookie } = await app();
    assert.equal((await a.inject({ method: 'POST', url: '/thing', headers: { host, cookie } })).statusCode, 403);
    assert.equal((await a.inject({ method: 'POST', url: '/thing', headers: { host, cookie, origin: 'http://evil.example' } })).statusCode, 403);
    assert.equal((await a.inject({ method: 'POST', url: '/thing', headers: { host, cookie, origin: `http://${host}` } })).statusCode, 200);
  });

  it('a bad or signed-out cookie is 401', async () => {
    const { a, cookie, sessions } = await app();
    assert.equal((await a.inject({ method: 'GET', url: '/thing', headers: { host, cookie: 'grove_session=v1.1.x.y' } })).statusCode, 401);
    sessions.revoke(cookie.slice('grove_session='.length));
    assert.equal((await a.inject({ method: 'GET', url: '/thing', headers: { host, cookie } })).statusCode, 401);
  });

  it('the Bearer token works as before, and wins over a cookie', async () => {
    const { a } = await app();
    const bearer = { host, authorization: `Bearer ${TOKEN}` };
    assert.equal((await a.inject({ method: 'POST', url: '/thing', headers: bearer })).statusCode, 200);
    assert.equal((await a.inject({ method: 'GET', url: '/thing', headers: { ...bearer, cookie: 'grove_session=forged' } })).statusCode, 200);
    assert.equal((await a.inject({ method: 'GET', url: '/thing', headers: { host, authorization: 'Bearer wrong' } })).statusCode, 401);
  });
});
