import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError } from './errors.js';
import { checkConditions, describeCondition, kindOf, type WaitCondition } from './wait.js';
import { macAddressOf } from './mac.js';

const refused = (until: unknown[], field: RegExp): void => {
  assert.throws(() => checkConditions(until as WaitCondition[]), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED' && field.test(String(e.extra['field'])));
};

test('each condition names exactly one kind', () => {
  assert.equal(kindOf({ port: 22 }), 'port');
  assert.equal(kindOf({ console: 'x', since: 3 }), 'console');
  checkConditions([{ agent: true }, { ip: true }, { file: '/a' }, { command: 'true' }, { state: 'running' }, { event: 'vm.*' }, { console: 'login:' }]);
  refused([], /^until$/);
  refused([{ port: 22, agent: true }], /^until\[0\]$/);
  refused([{ agent: true }, {}], /^until\[1\]$/);
  refused([{ port: 22, since: 4 }], /^until\[0\]\.since$/);
  refused([{ event: 'vm.exploded' }], /^until\[0\]\.event$/);
  refused([{ event: '*' }], /^until\[0\]\.event$/);
  refused([{ state: 'flying' }], /^until\[0\]\.state$/);
  refused(Array.from({ length: 17 }, () => ({ agent: true })), /^until$/);
});

test('conditions read as short phrases in messages', () => {
  assert.equal(describeCondition({ port: 22 }), 'port 22');
  assert.equal(describeCondition({ agent: true }), 'agent');
  assert.equal(describeCondition({ console: '/login:/' }), 'console /login:/');
});

test('a VM\'s MAC is stable, locally administered in QEMU\'s range, and differs between VMs', () => {
  const a = macAddressOf('3b1f1a52-6a55-4c55-9d3c-1f0a3e1e2b01');
  assert.match(a, /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.equal(macAddressOf('3b1f1a52-6a55-4c55-9d3c-1f0a3e1e2b01'), a);
  const many = new Set(Array.from({ length: 1000 }, (_, i) => macAddressOf(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)));
  assert.equal(many.size, 1000);
});
