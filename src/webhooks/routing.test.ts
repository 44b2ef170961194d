import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hooksFor } from './routing.js';

const hook = (id: string, events: string[], enabled = true) => ({ id, events, enabled });
const ids = (hs: { id: string }[]) => hs.map((h) => h.id);

describe('webhook routing', () => {
  const all = hook('all', []);
  const vmStar = hook('vm-star', ['vm.*']);
  const exact = hook('exact', ['vm.started', 'snapshot.created']);
  const off = hook('off', [], false);
  const hooks = [all, vmStar, exact, off];

  it('an empty filter takes everything; prefix.* and exact types as the events filter does', () => {
    assert.deepEqual(ids(hooksFor({ type: 'vm.created', data: {} }, hooks)), ['all', 'vm-star']);
    assert.deepEqual(ids(hooksFor({ type: 'vm.started', data: {} }, hooks)), ['all', 'vm-star', 'exact']);
    assert.deepEqual(ids(hooksFor({ type: 'snapshot.created', data: {} }, hooks)), ['all', 'exact']);
    assert.deepEqual(ids(hooksFor({ type: 'console.output', data: {} }, hooks)), ['all']);
  });

  it('disabled hooks get nothing', () => {
    assert.deepEqual(ids(hooksFor({ type: 'vm.created', data: {} }, [off])), []);
  });

  it('a webhook.test naming a hook goes to that hook only, whatever its filter', () => {
    assert.deepEqual(ids(hooksFor({ type: 'webhook.test', data: { webhookId: 'exact' } }, hooks)), ['exact']);
    assert.deepEqual(ids(hooksFor({ type: 'webhook.test', data: { webhookId: 'off' } }, hooks)), []);
    assert.deepEqual(ids(hooksFor({ type: 'webhook.test', data: { webhookId: 'gone' } }, hooks)), []);
  });

  it('a webhook.test naming no hook is routed by filter like any event', () => {
    assert.deepEqual(ids(hooksFor({ type: 'webhook.test', data: {} }, hooks)), ['all']);
  });
});
