/** Small statistics and formatting helpers shared by the benchmarks. */

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

/** Linear-interpolated percentile of `values` (need not be sorted); p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    mean: mean(values),
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** Milliseconds with a sensible number of digits: 0.412ms, 3.05ms, 345ms, 3.18s. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 100) return `${ms.toFixed(0)}ms`;
  if (ms >= 10) return `${ms.toFixed(1)}ms`;
  if (ms >= 1) return `${ms.toFixed(2)}ms`;
  return `${ms.toFixed(3)}ms`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? r.toFixed(2) : 'n/a';
}

export type Verdict = 'PASS' | 'MISS' | 'INFO';

export interface Target {
  /** '>=': higher is better (throughput ratio); '<=': lower is better (time ratio). */
  op: '>=' | '<=';
  value: number;
}

export function verdict(ratio: number, target: Target | null): Verdict {
  if (!target) return 'INFO';
  if (!Number.isFinite(ratio)) return 'MISS';
  return (target.op === '>=' ? ratio >= target.value : ratio <= target.value) ? 'PASS' : 'MISS';
}

export function fmtTarget(target: Target | null): string {
  return target ? `target ${target.op} ${target.value}` : 'no target';
}

/** What each benchmark hands back to run.ts for the summary table. */
export interface BenchResult {
  name: string;
  /** One line in the style `name: grove ... | reference ... | ratio R (target) VERDICT`. */
  line: string;
  /** Extra lines printed under the main one (breakdowns, individual runs). */
  details: string[];
  grove: string;
  reference: string;
  ratio: number;
  target: Target | null;
  verdict: Verdict;
}

export function resultLine(name: string, grove: string, reference: string, ratio: number, target: Target | null): BenchResult {
  const v = verdict(ratio, target);
  return {
    name, grove, reference, ratio, target, verdict: v, details: [],
    line: `${name}: grove ${grove} | ${reference} | ratio ${fmtRatio(ratio)} (${fmtTarget(target)}) ${v}`,
  };
}

/** Runs `fn` and returns how long it took in milliseconds (high-resolution clock). */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
