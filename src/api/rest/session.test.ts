import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionKeys, readCookie, sessionCookie } from './session.js';

const NOW = Date.UTC(2026, 0, 1);

describe('session cookies', () => {
  it('a value it issued verifies until it expires', () => {
    const keys = new SessionKeys('token-a', 60);
    const s = keys.issue(NOW);
    assert.equal(keys.verify(s.value, NOW + 59_000), s.expiresAt);
    assert.equal(keys.verify(s.value, NOW + 60_000), null);
  });

  it('a value signed with another token is refused', () => {
    const s = new SessionKeys('token-a').issue(NOW);
    assert.equal(new SessionKeys('token-b').verify(s.value, NOW), null);
  });

  it('a value with a changed expiry or a forged signature is refused', () => {
    const keys = new SessionKeys('token-a', 60);
    const [v, exp, nonce, mac] = keys.issue(NOW).value.split('.');
    assert.equal(keys.verify([v, String(Number(exp) + 3600), nonce, mac].join('.'), NOW), null);
    assert.equal(keys.verify([v, exp, nonce, 'A'.repeat(43)].join('.'), NOW), null);
    assert.equal(keys.verify('garbage', NOW), null);
    assert.equal(keys.verify('', NOW), null);
  });

  it('a signed-out value is refused, others still verify', () => {
    const keys = new SessionKeys('token-a');
    const a = keys.issue(NOW);
    const b = keys.issue(NOW);
    keys.revoke(a.value, NOW);
    assert.equal(keys.verify(a.value, NOW), null);
    assert.equal(keys.verify(b.value, NOW), b.expiresAt);
  });

  it('reads the named cookie among others', () => {
    assert.equal(readCookie('a=1; grove_session=v1.2.3.4; b=2', 'grove_session'), 'v1.2.3.4');
    assert.equal(readCookie('a=1', 'grove_session'), null);
    assert.equal(readCookie(undefined, 'grove_session'), null);
  });

  it('the cookie is HttpOnly and SameSite=Strict', () => {
    const c = sessionCookie({ value: 'x', expiresAt: 0 }, false);
    assert.match(c, /HttpOnly/);
    assert.match(c, /SameSite=Strict/);
    assert.doesNotMatch(c, /Secure/);
  });
});
