/**
 * Retry schedule of a delivery: exponential from `baseMs` (doubling per failed attempt), capped at
 * `capMs`, with jitter taking each delay down by up to `jitter` of itself so a burst of failures does not
 * retry in lockstep. Retries continue until `giveUpAfterMs` after the delivery was created; one last
 * attempt is made right at that cutoff, then the delivery is failed.
 */
export interface RetryPolicy {
  baseMs: number;
  capMs: number;
  giveUpAfterMs: number;
  /** 0..1: the share of each delay that jitter may remove. */
  jitter: number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Default base 1 s, cap 1 h, 24 h. A smaller base (tests) shrinks the cap in proportion. */
export function retryPolicy(baseMs = 1000): RetryPolicy {
  return { baseMs, capMs: Math.min(60 * 60 * 1000, baseMs * 3600), giveUpAfterMs: DAY_MS, jitter: 0.5 };
}

/** Delay after the `attempts`-th failed attempt (1 = the first attempt failed). */
export function retryDelay(attempts: number, p: RetryPolicy, rand: () => number = Math.random): number {
  const exp = Math.min(p.capMs, p.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40));
  return Math.max(1, Math.round(exp * (1 - p.jitter * rand())));
}

/** When to try again after a failed attempt at `now`, or null when the delivery has run out of time. */
export function nextAttemptAt(createdAt: number, attempts: number, now: number, p: RetryPolicy, rand: () => number = Math.random): number | null {
  const cutoff = createdAt + p.giveUpAfterMs;
  if (now >= cutoff) return null;
  return Math.min(now + retryDelay(attempts, p, rand), cutoff);
}
