import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleMemoryOptions {
  /** How often activity is looked at. */
  checkEveryMs: number;
  /** How long without a request counts as the end of a busy spell. */
  quietMs: number;
}

export const IDLE_MEMORY_DEFAULTS: IdleMemoryOptions = { checkEveryMs: 5_000, quietMs: 15_000 };

/**
 * One full garbage collection when a busy spell of requests ends. Left to itself, V8 keeps what a burst
 * grew — the young generation at its largest, old-space pages, Buffers whose memory waits for a GC — and
 * in an idle daemon nothing comes to trigger that GC: after a 10-minute soak the resident set stood 10–20 %
 * above its start through 2 minutes of quiet, and one full GC brought it back to within 1 % (RELIABILITY.md).
 * A GC of a daemon-sized heap takes milliseconds, and runs at most once per busy spell.
 */
export class IdleMemoryRelease {
  private served = 0;
  private seen = 0;
  private lastActivity = 0;
  private pending = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly collect: () => void, private readonly opts: IdleMemoryOptions = IDLE_MEMORY_DEFAULTS) {}

  start(now: () => number = Date.now): void {
    this.timer = setInterval(() => this.check(now()), this.opts.checkEveryMs);
    this.timer.unref();
  }

  /** A request was answered. */
  onServed(): void {
    this.served++;
  }

  /** Returns whether it collected. */
  check(now: number): boolean {
    if (this.served !== this.seen) {
      this.seen = this.served;
      this.lastActivity = now;
      this.pending = true;
      return false;
    }
    if (!this.pending || now - this.lastActivity < this.opts.quietMs) return false;
    this.pending = false;
    this.collect();
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * V8's full collection without `--expose-gc` on the command line: the flag set for the moment it takes to
 * make one context that has `gc`, then unset, so no other code ever sees a global `gc`.
 */
export function fullGarbageCollection(): () => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
