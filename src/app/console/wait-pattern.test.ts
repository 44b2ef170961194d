import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError } from '../../domain/errors.js';
import { compileWaitPattern } from './wait-pattern.js';

test('a backtracking bomb runs in linear time: /(a+)+$/ against 28 a and a b does not match', () => {
  // On a backtracking engine (V8's) this one call took 38 s, with the daemon's event loop frozen.
  assert.equal(compileWaitPattern('/(a+)+$/').find(`${'a'.repeat(28)}b`), null);
  assert.equal(compileWaitPattern('/(x+x+)+y/').test('x'.repeat(50_000)), false);
});

test('matches give the UTF-16 index and text, with the i, m and s flags', () => {
  assert.deepEqual(compileWaitPattern('/b+/').find('é😀xbb'), { index: 4, text: 'bb' });
  assert.deepEqual(compileWaitPattern('/ready\\s+\\d+/i').find('.. READY 42'), { index: 3, text: 'READY 42' });
  assert.equal(compileWaitPattern('/^b$/m').test('a\nb\nc'), true);
  assert.equal(compileWaitPattern('/^b$/').test('a\nb\nc'), false);
  assert.equal(compileWaitPattern('/a.b/s').test('a\nb'), true);
  assert.deepEqual(compileWaitPattern('a.b').find('axb a.b'), { index: 4, text: 'a.b' });
});

test('backreferences and lookaround are refused with UNSUPPORTED_PATTERN, invalid syntax with VALIDATION_FAILED', () => {
  for (const p of ['/(a)\\1/', '/foo(?=bar)/', '/(?<!x)y/', '/(?!a)b/']) {
    assert.throws(() => compileWaitPattern(p), (e: unknown) => e instanceof DomainError && e.code === 'UNSUPPORTED_PATTERN' && e.extra['field'] === 'waitFor.console', p);
  }
  assert.throws(() => compileWaitPattern('/(/'), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED');
});
