/**
 * Load generator, run as its own process (node dist/bench/lib/load-worker.js '<json>') so it never shares
 * an event loop with the server it measures. Drives autocannon programmatically and keeps every response
 * time at full resolution (autocannon's own histogram rounds to whole milliseconds), then prints one JSON
 * line: { requests, seconds, rps, mean, p50, p99, non2xx, errors, timeouts }.
 */
import { createRequire } from 'node:module';
import { percentile } from './stats.js';

export interface LoadConfig {
  url: string;
  connections: number;
  durationS: number;
  headers: Record<string, string>;
  /** Default GET without a body; the MCP benchmark POSTs one JSON-RPC request each time. */
  method?: 'GET' | 'POST';
  body?: string;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  mean: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** The load generator's own CPU time per answered request (µs): what receiving each answer costs a client. */
  clientCpuUs: number;
}

const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as any;

const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
const times: number[] = [];
let cpuAtStart: NodeJS.CpuUsage | null = null;
const instance = autocannon({
  url: cfg.url,
  connections: cfg.connections,
  duration: cfg.durationS,
  headers: cfg.headers,
  ...(cfg.method ? { method: cfg.method } : {}),
  ...(cfg.body !== undefined ? { body: cfg.body } : {}),
  timeout: 10,
});
instance.on('start', () => { cpuAtStart = process.cpuUsage(); });
instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
  if (statusCode >= 200 && statusCode < 300) times.push(responseTime);
});
instance.on('done', (r: any) => {
  const seconds = Number(r.duration);
  const cpu = process.cpuUsage(cpuAtStart ?? undefined);
  const out: LoadResult = {
    requests: times.length,
    seconds,
    rps: times.length / seconds,
    mean: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length),
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    non2xx: Number(r.non2xx ?? 0),
    errors: Number(r.errors ?? 0),
    timeouts: Number(r.timeouts ?? 0),
    clientCpuUs: (cpu.user + cpu.system) / Math.max(1, times.length),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
instance.on('error', (e: Error) => { process.stderr.write(`load-worker: ${e.message}\n`); process.exit(1); });
