// The parallel-lifecycle soak as one function, shared by the short e2e test and the long `make soak` run:
// a real daemon, a warm-up round, then workers for the given time while an SSE consumer (reconnecting
// with Last-Event-ID) and a webhook receiver count events; afterwards the checks of issue #9.
import { setTimeout as delay } from 'node:timers/promises';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { latestEventId } from '../helpers/events.js';
import { SseCounter, WebhookCounter, replayIds } from './event-counters.js';
import { runLifecycles, type LifecycleOptions, type OpRecord } from './lifecycles.js';
import { Sampler, fdTargets, listTree, qemuPidsOf, sample, summarize, type ProcSample } from './process-probe.js';

export interface SoakOptions extends Omit<LifecycleOptions, 'maxCycles' | 'prefix'> {
  /** Idle time before the baseline and before the final measurement (keep-alive sockets close, work drains). */
  settleMs: number;
  sampleEveryMs: number;
  sseReconnectEveryMs: number;
  /** Allowed growth of fds and RSS from the baseline to the end, as a fraction (0.05 = 5 %). */
  tolerance: number;
  /** Allowed RSS growth when it differs from `tolerance` (a short run ends before V8's heap is at its steady size). */
  rssTolerance?: number;
  /**
   * The warm-up before the baseline: this long at the run's full load, or (absent) one cycle per worker.
   * The daemon's resident set climbs through the first minutes of full load — V8's optimized code, its heap
   * and the allocator's arenas growing to what the load needs — and then holds level (RELIABILITY.md):
   * a baseline taken before that measures the warm-up, not a leak.
   */
  warmupMs?: number;
}

/** The warm-up when no duration is given: one lifecycle per worker (bounded, should one hang). */
const ONE_CYCLE_EACH = { maxCycles: 1, durationMs: 10 * 60_000 };

export interface SoakReport {
  options: Omit<SoakOptions, 'log'>;
  durationMs: number;
  cycles: number;
  brokenCycles: number;
  operations: number;
  byOp: Record<string, number>;
  byFace: Record<string, number>;
  byStatus: Record<string, number>;
  failures: OpRecord[];
  slowestMs: Record<string, number>;
  baseline: ProcSample;
  end: ProcSample;
  fdGrowth: number;
  rssGrowth: number;
  curve: ReturnType<typeof summarize>;
  events: { total: number; sseLive: number; sseLiveDuplicates: number; sseLiveMissing: number; sseReconnects: number; replayDuplicates: number; replayOutOfOrder: number; webhookDeliveries: number; webhookMissing: number[] };
  orphanQemu: number[];
  strayFiles: string[];
  lostFiles: string[];
  /** Every check that did not hold, in words; empty when the run passed. */
  problems: string[];
}

const count = <T>(xs: T[], key: (x: T) => string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
};

function duplicates(ids: number[]): number {
  return ids.length - new Set(ids).size;
}

/** The data dir's files that come and go with normal work and say nothing about leaks. */
const VOLATILE = /^(grove\.db-(wal|shm|journal))$/;

/** Waits out the settle time, logging the resident set every 10 s of it (the curve V8's memory reducer draws). */
async function settle(pid: number, ms: number, log: (line: string) => void, what: string): Promise<void> {
  const t0 = Date.now();
  const seen: string[] = [];
  while (Date.now() - t0 < ms) {
    seen.push((sample(pid, t0).rssKiB / 1024).toFixed(1));
    await delay(Math.min(10_000, ms - (Date.now() - t0)));
  }
  log(`${what} settle, RSS MiB every 10 s: ${seen.join(' ')}`);
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => undefined);
  const rx = await WebhookCounter.start();
  let d: TestDaemon | null = null;
  try {
    d = await startDaemon({ env: { GROVE_WEBHOOK_BACKOFF_MS: '200', GROVE_LOG_LEVEL: 'warn' } });
    const pid = d.proc.pid!;
    const hook = await d.call('POST', '/webhooks', { url: rx.url });
    if (hook.status !== 201) throw new Error(`webhook registration: ${hook.status} ${JSON.stringify(hook.body)}`);

    // Warm-up: every code path once (JIT, modules and schemas loaded on first use, pools) at the run's own
    // concurrency (V8 keeps the heap a burst grew to), so the baseline is a daemon at work, not a cold one.
    const warmFor = opts.warmupMs !== undefined ? { durationMs: opts.warmupMs } : ONE_CYCLE_EACH;
    log(opts.warmupMs !== undefined ? `warm-up: ${opts.warmupMs / 1000} s at full load` : 'warm-up round');
    const warm = await runLifecycles(d, { ...opts, ...warmFor, prefix: 'warm' });
    if (warm.brokenCycles > 0) throw new Error(`warm-up failed: ${JSON.stringify(warm.records.filter((r) => r.detail))}`);
    await settle(pid, opts.settleMs, log, 'baseline');
    const startedAt = Date.now();
    const baseline = sample(pid, startedAt);
    const fdsBefore = fdTargets(pid);
    const treeBefore = listTree(d.dataDir).filter((f) => !VOLATILE.test(f));
    const startId = await latestEventId(d);
    log(`baseline: ${baseline.fds} fds, ${baseline.rssKiB} KiB RSS, events from ${startId}`);

    const sse = await SseCounter.start(d, startId, opts.sseReconnectEveryMs);
    const sampler = new Sampler(pid, startedAt, opts.sampleEveryMs);
    const run = await runLifecycles(d, { ...opts, prefix: 'soak' });
    log(`lifecycles done: ${run.cycles} cycles, ${run.records.length} operations in ${Math.round(run.durationMs / 1000)} s`);

    const endId = await latestEventId(d);
    await sse.until(endId, 60_000);
    sse.stop();
    const replay = await replayIds(d, startId, endId);
    const expected = replay;
    const deadline = Date.now() + 120_000;
    while (rx.missing(expected).length > 0 && Date.now() < deadline) await delay(250);
    // Every client of the run is gone now (MCP sessions closed, SSE closed): measure after the settle.
    await settle(pid, opts.settleMs, log, 'end');
    const end = sampler.take();
    sampler.stop();
    const fdsAfter = fdTargets(pid);

    const liveSet = new Set(sse.ids);
    const events = {
      total: endId - startId,
      sseLive: sse.ids.length,
      sseLiveDuplicates: duplicates(sse.ids),
      sseLiveMissing: expected.filter((id) => !liveSet.has(id)).length,
      sseReconnects: sse.reconnects,
      replayDuplicates: duplicates(replay),
      replayOutOfOrder: replay.filter((id, i) => i > 0 && id <= replay[i - 1]!).length,
      webhookDeliveries: rx.deliveries,
      webhookMissing: rx.missing(expected),
    };
    const orphanQemu = qemuPidsOf(d.dataDir);
    const treeAfter = listTree(d.dataDir).filter((f) => !VOLATILE.test(f));
    const strayFiles = treeAfter.filter((f) => !treeBefore.includes(f));
    const lostFiles = treeBefore.filter((f) => !treeAfter.includes(f));

    const records = run.records;
    const failures = records.filter((r) => r.detail !== undefined);
    const slowestMs: Record<string, number> = {};
    for (const r of records) slowestMs[r.op] = Math.max(slowestMs[r.op] ?? 0, r.ms);
    const fdGrowth = (end.fds - end.clientHeld - (baseline.fds - baseline.clientHeld)) / (baseline.fds - baseline.clientHeld);
    const rssGrowth = (end.rssKiB - baseline.rssKiB) / baseline.rssKiB;

    const problems: string[] = [];
    const fivexx = records.filter((r) => r.status >= 500);
    if (fivexx.length) problems.push(`${fivexx.length} answers were 5xx: ${JSON.stringify(fivexx.slice(0, 5))}`);
    const unanswered = records.filter((r) => r.status === 0);
    if (unanswered.length) problems.push(`${unanswered.length} operations got no answer: ${JSON.stringify(unanswered.slice(0, 5))}`);
    if (failures.length) problems.push(`${failures.length} operations failed: ${JSON.stringify(failures.slice(0, 5))}`);
    if (fdGrowth > opts.tolerance) problems.push(`open fds grew ${(fdGrowth * 100).toFixed(1)} % (${baseline.fds} → ${end.fds}, of which held by our idle clients ${baseline.clientHeld} → ${end.clientHeld}): new ${fdsAfter.filter((f) => !fdsBefore.includes(f)).join(', ')}`);
    if (rssGrowth > (opts.rssTolerance ?? opts.tolerance)) problems.push(`RSS grew ${(rssGrowth * 100).toFixed(1)} % (${baseline.rssKiB} → ${end.rssKiB} KiB)`);
    if (orphanQemu.length) problems.push(`QEMU processes left: ${orphanQemu.join(', ')}`);
    if (strayFiles.length) problems.push(`stray files in the data dir: ${strayFiles.join(', ')}`);
    if (lostFiles.length) problems.push(`files gone from the data dir: ${lostFiles.join(', ')}`);
    if (events.total <= 0) problems.push('no events were published');
    if (replay.length !== events.total) problems.push(`SSE replay gave ${replay.length} events of ${events.total}`);
    if (events.replayDuplicates || events.replayOutOfOrder) problems.push(`SSE replay: ${events.replayDuplicates} duplicates, ${events.replayOutOfOrder} out of order`);
    if (events.sseLiveDuplicates || events.sseLiveMissing) problems.push(`SSE with reconnects: ${events.sseLiveDuplicates} duplicates, ${events.sseLiveMissing} missing`);
    if (events.webhookMissing.length) problems.push(`webhooks never delivered events ${events.webhookMissing.slice(0, 20).join(', ')}`);

    const { log: _log, ...options } = opts;
    return {
      options, durationMs: run.durationMs, cycles: run.cycles, brokenCycles: run.brokenCycles, operations: records.length,
      byOp: count(records, (r) => r.op), byFace: count(records, (r) => r.face), byStatus: count(records, (r) => String(r.status)),
      failures, slowestMs, baseline, end, fdGrowth, rssGrowth, curve: summarize(sampler.samples, 8), events, orphanQemu, strayFiles, lostFiles, problems,
    };
  } finally {
    await d?.cleanup();
    await rx.close();
  }
}
