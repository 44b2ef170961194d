import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { deliveryHeaders, nemetonSignature, standardSignature } from './signer.js';

describe('webhook signer', () => {
  it('X-Nemeton-Secret is sha256=<hex HMAC-SHA256(secret, body)> (known answer)', () => {
    assert.equal(nemetonSignature('key', 'The quick brown fox jumps over the lazy dog'),
      'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8');
  });

  it('webhook-signature uses the secret as raw UTF-8 bytes (known answer from openssl)', () => {
    // printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' | openssl dgst -sha256 -hmac 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' -binary | base64
    assert.equal(standardSignature('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'),
      'v1,ELhqG0Ku1gwOc1f4jyKdp3SFGFLAOdJ9bvpWLciCakI=');
  });

  it('non-ASCII secrets and bodies are signed as UTF-8', () => {
    const secret = 'sécret-ünïcode-☃-0123';
    const body = '{"name":"vm-ü"}';
    const hex = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
    assert.equal(nemetonSignature(secret, body), `sha256=${hex}`);
  });

  it('headers without a secret: content type, event, delivery id, and no signature headers', () => {
    const h = deliveryHeaders({ deliveryId: 'd-1', eventType: 'vm.created', body: '{}', secret: null, timestamp: 1700000000 });
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h['x-nemeton-event'], 'vm.created');
    assert.equal(h['x-nemeton-delivery'], 'd-1');
    for (const k of ['x-nemeton-secret', 'webhook-id', 'webhook-timestamp', 'webhook-signature']) assert.equal(h[k], undefined, k);
  });

  it('headers with a secret verify with the standardwebhooks library (format raw)', () => {
    const secret = 'a-test-secret-of-some-length';
    const body = JSON.stringify({ id: 7, type: 'vm.started', timestamp: new Date().toISOString(), data: { state: 'running' } });
    const ts = Math.floor(Date.now() / 1000);
    const h = deliveryHeaders({ deliveryId: '6f1c1f0e-4a57-4c1d-9d55-0b3b1a1b2c3d', eventType: 'vm.started', body, secret, timestamp: ts });
    assert.equal(h['webhook-id'], '6f1c1f0e-4a57-4c1d-9d55-0b3b1a1b2c3d');
    assert.equal(h['webhook-timestamp'], String(ts));
    assert.equal(h['x-nemeton-secret'], nemetonSignature(secret, body));
    assert.deepEqual(new Webhook(secret, { format: 'raw' }).verify(body, h), JSON.parse(body));
    assert.throws(() => new Webhook('another-secret-of-some-length', { format: 'raw' }).verify(body, h));
    assert.throws(() => new Webhook(secret, { format: 'raw' }).verify(`${body} `, h));
  });

  it('each attempt is signed for its own timestamp', () => {
    const a = deliveryHeaders({ deliveryId: 'x', eventType: 'vm.created', body: '{}', secret: 'sixteen-chars-ok', timestamp: 100 });
    const b = deliveryHeaders({ deliveryId: 'x', eventType: 'vm.created', body: '{}', secret: 'sixteen-chars-ok', timestamp: 101 });
    assert.notEqual(a['webhook-signature'], b['webhook-signature']);
    assert.equal(a['x-nemeton-secret'], b['x-nemeton-secret']);
  });
});
