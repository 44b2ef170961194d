import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keptJson, knownJson } from './known-json.js';

test('keptJson serializes an object once and hands the same text to every face after', () => {
  const vm = { id: 'a', name: 'web', agent: null };
  const first = keptJson(vm);
  assert.equal(first, JSON.stringify(vm));
  assert.equal(knownJson(vm), first, 'recorded for the MCP answer built around it');
  (vm as { name: string }).name = 'changed';
  assert.equal(keptJson(vm), first, 'kept per object: the services hand out a new object when a VM changes');
  assert.equal(keptJson({ ...vm }), JSON.stringify({ ...vm }), 'a new object gets its own JSON');
});
