import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from './errors.js';
import { checkWebhookEvents, checkWebhookSecret, checkWebhookUrl } from './webhook.js';

const field = (fn: () => unknown): string | undefined => {
  try { fn(); } catch (e) { assert.ok(e instanceof DomainError); assert.equal(e.code, 'VALIDATION_FAILED'); return e.extra['field'] as string; }
  assert.fail('expected a validation error');
};

describe('webhook input checks', () => {
  it('accepts http and https URLs and normalises them', () => {
    assert.equal(checkWebhookUrl('http://127.0.0.1:8080/hook'), 'http://127.0.0.1:8080/hook');
    assert.equal(checkWebhookUrl('HTTPS://Example.COM/a?b=c'), 'https://example.com/a?b=c');
  });

  it('refuses other schemes, relative URLs, credentials, fragments, long URLs', () => {
    for (const u of ['ftp://x/', 'file:///etc/passwd', 'javascript:alert(1)', '/relative', 'not a url', 'http://user:pw@host/', 'http://user@host/', 'http://h/#frag', `http://h/${'a'.repeat(2100)}`]) {
      assert.equal(field(() => checkWebhookUrl(u)), 'url', u);
    }
  });

  it('event patterns: exact types and prefix.*; unknown ones refused; duplicates dropped', () => {
    assert.deepEqual(checkWebhookEvents(['vm.*', 'snapshot.created', 'vm.*']), ['vm.*', 'snapshot.created']);
    assert.deepEqual(checkWebhookEvents([]), []);
    for (const p of ['vm.nope', 'nope.*', '', 'vm*']) assert.equal(field(() => checkWebhookEvents([p])), 'events', p);
  });

  it('secret: 16..256 printable ASCII characters', () => {
    assert.equal(checkWebhookSecret('0123456789abcdef'), '0123456789abcdef');
    assert.equal(field(() => checkWebhookSecret('short')), 'secret');
    assert.equal(field(() => checkWebhookSecret('x'.repeat(257))), 'secret');
    assert.equal(field(() => checkWebhookSecret('0123456789abcdef\n')), 'secret');
    assert.equal(field(() => checkWebhookSecret('0123456789abcdef☃')), 'secret');
    assert.equal(checkWebhookSecret('with space & punct!~'), 'with space & punct!~');
  });
});
