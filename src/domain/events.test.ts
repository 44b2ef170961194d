import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidTypePattern, matchesFilter } from './events.js';

test('type patterns: exact, prefix wildcard, star; unknown rejected', () => {
  assert.equal(isValidTypePattern('vm.started'), true);
  assert.equal(isValidTypePattern('vm.*'), true);
  assert.equal(isValidTypePattern('*'), true);
  assert.equal(isValidTypePattern('vm.exploded'), false);
  assert.equal(isValidTypePattern('nothing.*'), false);
});

test('filter by type pattern and vm', () => {
  const e = { type: 'vm.started' as const, vmId: 'a' };
  assert.equal(matchesFilter(e, { types: [] }), true);
  assert.equal(matchesFilter(e, { types: ['vm.*'] }), true);
  assert.equal(matchesFilter(e, { types: ['snapshot.*', 'vm.started'] }), true);
  assert.equal(matchesFilter(e, { types: ['vm.stopped'] }), false);
  assert.equal(matchesFilter(e, { types: [], vmId: 'b' }), false);
  assert.equal(matchesFilter({ type: 'webhook.test' }, { types: [], vmId: 'a' }), false);
});
