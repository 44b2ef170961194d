import { setTimeout as sleep } from 'node:timers/promises';
import { READY_LINE } from '../test/helpers/guest.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { onCleanup } from './lib/cleanup.js';
import { ApiClient } from './lib/http.js';
import { measureLibvirt, mib, rssKiB, type LibvirtFigures } from './lib/libvirt-ref.js';
import { fmtMs, fmtRatio, median, percentile, type BenchResult, type Verdict } from './lib/stats.js';

export interface FootprintOptions {
  vms: number;
  memoryMB: number;
  scrapes: number;
  /** Rounds of the operation burst (each touches every VM a few times). */
  burstRounds: number;
  /**
   * How long a process is left alone before its RSS is read (sampled every 250 ms, the median of the last
   * 3 s taken). Long enough for V8's memory reducer, which runs a few seconds after allocation stops.
   */
  settleMs: number;
}

export const FOOTPRINT_DEFAULTS: FootprintOptions = { vms: 20, memoryMB: 128, scrapes: 50, burstRounds: 3, settleMs: 30_000 };

/** Issue 12's targets, in MiB of the daemon's VmRSS. */
const IDLE_TARGET_MIB = 64;
const RUNNING_TARGET_MIB = 80;

/**
 * (issue 12, Footprint) The daemon's resident set as users run it (`bin/grove serve` in its own process,
 * so with the flags that script sets): idle with no VM, with `vms` running test guests, and after a burst
 * of operations over them (lifecycle, console, MCP, docs, web UI, metrics) — beside libvirtd's (+
 * virtlogd's) on the same machine, idle and with one guest. Then the `/metrics` scrape time (JSON and
 * Prometheus text) with those VMs running, against `GET /vms` on the same daemon and connection.
 */
export async function benchFootprint(o: FootprintOptions = FOOTPRINT_DEFAULTS): Promise<BenchResult[]> {
  const lv = await measureLibvirt(o.settleMs);
  const refIdle = typeof lv === 'string' ? null : lv.idleKiB;
  const refGuest = typeof lv === 'string' ? null : lv.oneGuestKiB;
  const lvNote = typeof lv === 'string' ? `  libvirt skipped: ${lv}` : `  libvirt reference: idle libvirtd ${mib(lv.idleKiB)}; one running guest: ${(lv as LibvirtFigures).oneGuestDetail}`;

  const d = await startDaemon({ env: { GROVE_LOG_LEVEL: 'warn' } });
  const stop = onCleanup(`daemon ${d.url}`, () => d.cleanup());
  const client = new ApiClient(d.api, d.token);
  const closeClient = onCleanup('API client', () => client.close());
  try {
    const pid = d.proc.pid!;
    const idle = await settledRss(pid, o.settleMs);

    const ids: string[] = [];
    for (let i = 0; i < o.vms; i++) ids.push(((await createGuestVm(d, `fp-${i}`, { memoryMB: o.memoryMB })) as { id: string }).id);
    // A few at a time: 20 TCG boots at once would only queue on the CPUs.
    for (let i = 0; i < ids.length; i += 4) {
      await Promise.all(ids.slice(i, i + 4).map((id) => client.ok('POST', `/vms/${id}/start`, { waitFor: { console: READY_LINE, timeoutSeconds: 120 } }, 200, 150_000)));
    }
    const running = await settledRss(pid, o.settleMs);

    const scrape = await scrapeTimes(client, o.scrapes);
    const burstMs = await burst(d, client, ids, o.burstRounds);
    const soaked = await settledRss(pid, o.settleMs);

    const results = [
      rssResult('footprint-idle', idle, refIdle, 'libvirtd idle', IDLE_TARGET_MIB),
      rssResult(`footprint-${o.vms}vms`, running, refGuest, 'libvirtd+virtlogd, 1 guest', RUNNING_TARGET_MIB),
      // Issue 12 asks for this figure beside libvirtd's, with no target of its own.
      rssResult('footprint-after-burst', soaked, refGuest, 'libvirtd+virtlogd, 1 guest', null),
      scrapeResult('metrics-json', scrape.json, scrape.vms, o.vms),
      scrapeResult('metrics-prometheus', scrape.prom, scrape.vms, o.vms),
    ];
    results[0]!.details.push(
      lvNote,
      `  grove: bin/grove serve in its own process (VmRSS: median of the last 3 s of a ${o.settleMs / 1000} s settle, same for libvirtd); ${o.vms} test guests of ${o.memoryMB} MiB each for the running figures`,
      `  burst: ${o.burstRounds} rounds over the ${o.vms} VMs (pause/resume, console read/send, show, runtime, errors, create+delete, force-stop+start, MCP list/call, openapi.json, docs, web UI, metrics) in ${(burstMs / 1000).toFixed(0)}s`,
    );
    return results;
  } finally {
    await closeClient();
    await stop();
  }
}

async function settledRss(pid: number, settleMs: number): Promise<number> {
  const samples: number[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < settleMs) {
    await sleep(250);
    if (Date.now() - t0 >= settleMs - 3000) samples.push(rssKiB(pid));
  }
  return median(samples);
}

function rssResult(name: string, kib: number, refKiB: number | null, refLabel: string, targetMiB: number | null): BenchResult {
  const v: Verdict = targetMiB === null ? 'INFO' : kib / 1024 <= targetMiB ? 'PASS' : 'MISS';
  const ratio = refKiB === null ? Number.NaN : kib / refKiB;
  const grove = targetMiB === null ? `${mib(kib)} (no target)` : `${mib(kib)} (target <= ${targetMiB} MiB)`;
  const reference = refKiB === null ? `${refLabel}: skipped` : `${refLabel} ${mib(refKiB)}`;
  return {
    name, grove, reference, ratio, target: null, verdict: v, details: [],
    line: `${name}: grove ${grove} | ${reference} | ratio ${fmtRatio(ratio)} ${v}`,
  };
}

function scrapeResult(name: string, times: number[], ref: number[], vms: number): BenchResult {
  const g = median(times);
  const r = median(ref);
  const grove = `median ${fmtMs(g)}, p99 ${fmtMs(percentile(times, 99))}`;
  const reference = `GET /vms median ${fmtMs(r)}, p99 ${fmtMs(percentile(ref, 99))}`;
  const res: BenchResult = {
    name, grove, reference, ratio: g / r, target: null, verdict: 'INFO', details: [],
    line: `${name}: grove ${grove} | ${reference} | ratio ${fmtRatio(g / r)} (no target) INFO`,
  };
  res.details.push(`  ${times.length} scrapes with ${vms} running VMs, alternating with GET /vms on one keep-alive connection`);
  return res;
}

/** Each round: GET /vms, the JSON metrics and the Prometheus text, in a rotating order. */
async function scrapeTimes(client: ApiClient, n: number): Promise<{ vms: number[]; json: number[]; prom: number[] }> {
  const out = { vms: [] as number[], json: [] as number[], prom: [] as number[] };
  const kinds = [
    ['vms', '/vms'], ['json', '/metrics'], ['prom', '/metrics?format=prometheus'],
  ] as const;
  // Warm-up: the first request of each route compiles its schemas.
  for (const [, path] of kinds) await client.ok('GET', path);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < kinds.length; k++) {
      const [kind, path] = kinds[(i + k) % kinds.length]!;
      const t0 = process.hrtime.bigint();
      const r = await client.call('GET', path);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}`);
      if (kind === 'prom' && !(typeof r.body === 'string' && r.body.includes('# TYPE'))) throw new Error('the Prometheus scrape is not in the text format');
      out[kind].push(ms);
    }
  }
  return out;
}

/** A short soak-like burst: most surfaces a client uses, so lazily loaded parts are in the figure. */
async function burst(d: TestDaemon, client: ApiClient, ids: string[], rounds: number): Promise<number> {
  const t0 = Date.now();
  const mcp = (body: object) => fetch(`${d.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify(body),
  }).then(async (r) => { if (r.status !== 200) throw new Error(`/mcp: HTTP ${r.status}`); await r.text(); });
  for (let round = 0; round < rounds; round++) {
    for (const id of ids) {
      await client.ok('POST', `/vms/${id}/pause`);
      await client.ok('POST', `/vms/${id}/resume`);
      await client.ok('GET', `/vms/${id}`);
      await client.ok('GET', `/vms/${id}/runtime`);
      await client.ok('GET', `/vms/${id}/console`);
      await client.ok('GET', `/vms/${id}/errors`);
      await client.call('POST', `/vms/${id}/console`, { text: 'echo burst\n' }).then((r) => { if (r.status >= 300) throw new Error(`console send: HTTP ${r.status}`); });
    }
    const extra = ((await client.ok('POST', '/vms', { name: `fp-extra-${round}`, kernel: 'vmlinuz', initrd: 'initramfs.gz', memoryMB: 128, diskGB: 1 }, 201)) as { id: string }).id;
    await client.ok('DELETE', `/vms/${extra}`, undefined, 204);
    const cycled = ids[round % ids.length]!;
    await client.ok('POST', `/vms/${cycled}/force-stop`);
    await client.ok('POST', `/vms/${cycled}/start`, { waitFor: { console: READY_LINE, timeoutSeconds: 120 } }, 200, 150_000);
    await mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
    await mcp({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    await mcp({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_vms', arguments: {} } });
    for (const path of ['/openapi.json', '/docs', '/metrics', '/metrics?format=prometheus', '/host']) await client.ok('GET', path);
    const page = await fetch(`${d.url}/`);
    const html = await page.text();
    for (const m of html.matchAll(/\/assets\/[A-Za-z0-9._-]+/g)) await (await fetch(`${d.url}${m[0]}`, { headers: { 'accept-encoding': 'gzip' } })).arrayBuffer();
  }
  return Date.now() - t0;
}
