import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdleMemoryRelease, fullGarbageCollection } from './idle-memory.js';

test('one collection per busy spell, once requests have stopped for the quiet time', () => {
  let collections = 0;
  const r = new IdleMemoryRelease(() => { collections++; }, { checkEveryMs: 5_000, quietMs: 15_000 });
  assert.equal(r.check(0), false, 'nothing served yet: nothing to give back');
  r.onServed();
  r.onServed();
  assert.equal(r.check(5_000), false, 'busy');
  assert.equal(r.check(10_000), false);
  assert.equal(r.check(15_000), false, '10 s quiet');
  assert.equal(r.check(20_000), true, '15 s quiet');
  assert.equal(r.check(25_000), false, 'once');
  assert.equal(r.check(60_000), false, 'still quiet, still once');
  r.onServed();
  assert.equal(r.check(65_000), false);
  r.onServed();
  assert.equal(r.check(70_000), false, 'requests keep coming');
  assert.equal(r.check(85_000), true, 'the next spell ended');
  assert.equal(collections, 2);
});

test('the collection is V8\'s own full GC (an unreachable object is gone after it), and leaves no global gc behind', async () => {
  const gc = fullGarbageCollection();
  const ref = ((): WeakRef<object> => new WeakRef({ big: new Array(1000).fill(1) }))();
  // A WeakRef's target lives at least until the current job ends.
  await new Promise((r) => setImmediate(r));
  gc();
  assert.equal(ref.deref(), undefined);
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
});
