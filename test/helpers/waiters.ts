/**
 * Waiting on a stream client (SSE, WebSocket): predicates are re-checked on every arrival the client
 * reports with `wake()`, and every 100 ms for predicates that also look elsewhere.
 */
export class Waiters {
  private readonly checks = new Set<() => void>();

  /** `label` and `state()` describe the client in a timeout's message. */
  constructor(private readonly label: string, private readonly state: () => string) {}

  wake(): void {
    for (const check of [...this.checks]) check();
  }

  /** Resolves once `pred()` holds; rejects after `timeoutMs`, or when `pred` throws. */
  until(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        let ok = false;
        try { ok = pred(); } catch (e) { done(); reject(e); return; }
        if (ok) { done(); resolve(); }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: timed out waiting for ${what}; ${this.state()}`));
      }, timeoutMs);
      const poll = setInterval(check, 100);
      const done = (): void => { clearTimeout(timer); clearInterval(poll); this.checks.delete(check); };
      this.checks.add(check);
    });
  }

  /** Waits for the first item of `items()` matching `pred` and returns it. */
  async first<T>(what: string, items: () => T[], pred: (item: T) => boolean, timeoutMs = 30_000): Promise<T> {
    await this.until(what, () => items().some(pred), timeoutMs);
    return items().find(pred)!;
  }
}
