import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY_MS, nextAttemptAt, retryDelay, retryPolicy } from './backoff.js';

describe('webhook retry schedule', () => {
  const p = retryPolicy();
  const noJitter = () => 0;
  const fullJitter = () => 1;

  it('doubles from 1 s and caps at 1 h', () => {
    const delays = [1, 2, 3, 4, 5, 12, 13, 14, 30].map((n) => retryDelay(n, p, noJitter));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 2048000, 3600000, 3600000, 3600000]);
  });

  it('jitter takes a delay down by at most half, never up', () => {
    assert.equal(retryDelay(3, p, fullJitter), 2000);
    for (let i = 0; i < 200; i++) {
      const d = retryDelay(6, p);
      assert.ok(d >= 16000 && d <= 32000, String(d));
    }
  });

  it('a smaller base (tests) scales the whole schedule, cap included', () => {
    const t = retryPolicy(100);
    assert.equal(t.capMs, 360_000);
    assert.deepEqual([1, 2, 3].map((n) => retryDelay(n, t, noJitter)), [100, 200, 400]);
    assert.equal(t.giveUpAfterMs, DAY_MS);
  });

  it('retries for 24 h: one last attempt at the cutoff, then gives up', () => {
    const created = 1_000_000;
    assert.equal(nextAttemptAt(created, 1, created + 10, p, noJitter), created + 1010);
    // Close to the cutoff the next attempt is pulled in to the cutoff itself...
    assert.equal(nextAttemptAt(created, 30, created + DAY_MS - 60_000, p, noJitter), created + DAY_MS);
    // ...and an attempt at (or after) the cutoff is the last.
    assert.equal(nextAttemptAt(created, 31, created + DAY_MS, p, noJitter), null);
  });

  it('the default schedule makes at least 30 attempts in the 24 h', () => {
    const created = 0;
    let now = 0;
    let attempts = 1;
    for (;;) {
      const next = nextAttemptAt(created, attempts, now, p);
      if (next === null) break;
      now = next;
      attempts++;
      assert.ok(attempts < 1000);
    }
    assert.ok(attempts >= 30, String(attempts));
    assert.equal(now, DAY_MS);
  });
});
