import { nowMs } from './stats.js';

/**
 * Attribution only: wraps methods of a prototype (the in-process daemon's classes) so each call's
 * duration is recorded under a label. The wrappers cost two hrtime reads per call. `restore()` puts the
 * originals back. src/ is not changed; this patches the loaded classes in the bench process.
 */
export class Probe {
  readonly samples = new Map<string, number[]>();
  private readonly undo: (() => void)[] = [];
  enabled = true;

  wrap(proto: object, method: string, label = method): void {
    const p = proto as Record<string, unknown>;
    const orig = p[method] as (...a: unknown[]) => Promise<unknown>;
    if (typeof orig !== 'function') throw new Error(`no method ${method} to probe`);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const probe = this;
    p[method] = async function (this: unknown, ...args: unknown[]) {
      const t0 = nowMs();
      try {
        return await orig.apply(this, args);
      } finally {
        if (probe.enabled) probe.add(label, nowMs() - t0);
      }
    };
    this.undo.push(() => { p[method] = orig; });
  }

  add(label: string, ms: number): void {
    let a = this.samples.get(label);
    if (!a) this.samples.set(label, (a = []));
    a.push(ms);
  }

  clear(): void {
    this.samples.clear();
  }

  restore(): void {
    for (const u of this.undo.splice(0).reverse()) u();
  }
}
