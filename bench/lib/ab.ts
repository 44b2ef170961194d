/** A/B load comparisons (list-vms, mcp-list): the 100 VMs, alternating rounds, medians and their format. */
import type { BenchDaemon } from './daemon.js';
import type { LoadResult } from './load.js';
import { fmtMs, median } from './stats.js';

export interface LoadFigures { rps: number; p50: number; p99: number }

/** Defines `n` kernel-boot VMs of the test guest, named bench-000, bench-001, … (not started). */
export async function createBenchVms(bd: BenchDaemon, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await bd.createGuestVm(`bench-${String(i).padStart(3, '0')}`);
}

/**
 * `rounds` rounds of one `measure` per target: in `targets` order in even rounds, reversed in odd ones,
 * so neither side always runs first. Returns every run per target.
 */
export async function alternatingRounds<T extends string>(
  targets: readonly T[], rounds: number, measure: (t: T) => Promise<LoadResult>,
): Promise<Record<T, LoadResult[]>> {
  const runs = Object.fromEntries(targets.map((t) => [t, [] as LoadResult[]])) as Record<T, LoadResult[]>;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) runs[t].push(await measure(t));
  }
  return runs;
}

/** Median req/s, p50 and p99 over runs (each figure's median on its own). */
export function medianLoad(runs: readonly LoadResult[]): LoadFigures {
  return {
    rps: median(runs.map((x) => x.rps)),
    p50: median(runs.map((x) => x.p50)),
    p99: median(runs.map((x) => x.p99)),
  };
}

/** `1234 req/s p50 0.58ms p99 2.46ms` */
export function fmtLoad(x: LoadFigures): string {
  return `${x.rps.toFixed(0)} req/s p50 ${fmtMs(x.p50)} p99 ${fmtMs(x.p99)}`;
}

/** Each run's req/s, comma-separated. */
export function rpsList(runs: readonly LoadResult[]): string {
  return runs.map((x) => x.rps.toFixed(0)).join(', ');
}

/**
 * REST req/s over MCP req/s of each round (the two runs of a round are next to each other in time, so
 * they share the machine's load): their spread shows how far other work moved the medians.
 */
export function pairedRatios(runs: { mcp: readonly LoadResult[]; rest: readonly LoadResult[] }): string {
  return runs.mcp.map((m, i) => (runs.rest[i]!.rps / m.rps).toFixed(2)).join(', ');
}

/**
 * Median CPU per request, daemon (measured in the bench process, where it runs) and load generator (its
 * own process), for MCP and REST, and the ratio of the sums: on a machine whose cores both share, the
 * req/s of each side follows that sum.
 */
export function cpuFigures(daemonUs: { mcp: readonly number[]; rest: readonly number[] }, runs: { mcp: readonly LoadResult[]; rest: readonly LoadResult[] }): string {
  const d = { mcp: median([...daemonUs.mcp]), rest: median([...daemonUs.rest]) };
  const c = { mcp: median(runs.mcp.map((x) => x.clientCpuUs)), rest: median(runs.rest.map((x) => x.clientCpuUs)) };
  return `CPU/request daemon MCP ${d.mcp.toFixed(0)} µs, REST ${d.rest.toFixed(0)} µs; client MCP ${c.mcp.toFixed(0)} µs, REST ${c.rest.toFixed(0)} µs; `
    + `sum ratio ${((d.mcp + c.mcp) / (d.rest + c.rest)).toFixed(2)}`;
}
