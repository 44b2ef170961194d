import type { Metric } from 'prom-client';
import { VM_STATES } from '../../domain/vm.js';
import type { ObservabilitySample } from '../../app/observability/observability-service.js';
import type { StreamClients } from '../stream/stream-clients.js';
import { LATENCY_BUCKETS_SECONDS, type RequestStats } from './request-stats.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What Prometheus asks for (`Accept: text/plain;version=0.0.4` or OpenMetrics), as opposed to a JSON client. */
export function wantsPrometheus(accept: string | undefined, format: string | undefined): boolean {
  if (format !== undefined) return format === 'prometheus';
  const types = (accept ?? '').split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  return types.some((t) => t === 'text/plain' || t === 'application/openmetrics-text') && !types.includes('application/json');
}

export interface FaceStats {
  requests: RequestStats;
  streams: StreamClients;
}

type Prom = typeof import('prom-client');
let prom: Promise<Prom> | null = null;
/** Loaded on the first scrape: a daemon nobody scrapes does not carry the client library. */
function promClient(): Promise<Prom> {
  prom ??= import('prom-client').then((m) => ((m as { default?: Prom }).default ?? m));
  return prom;
}

/**
 * The text exposition of one scrape. A fresh registry each time: every value comes from the sample taken
 * for this scrape (counters Grove or QEMU keep), so concurrent scrapes cannot mix their figures.
 */
export async function renderPrometheus(sample: ObservabilitySample, face: FaceStats, version: string): Promise<string> {
  const p = await promClient();
  const registry = new p.Registry();
  const reg = { registers: [registry] };

  const vmLabels = ['vm', 'id'] as const;
  const state = new p.Gauge({ name: 'grove_vm_state', help: 'The VM\'s state: 1 for the state it is in, 0 for the others', labelNames: [...vmLabels, 'state'], ...reg });
  const uptime = new p.Gauge({ name: 'grove_vm_uptime_seconds', help: 'Time since the VM\'s QEMU was started (running or paused VMs)', labelNames: vmLabels, ...reg });
  const cpu = new p.Counter({ name: 'grove_vm_cpu_seconds_total', help: 'CPU time used by the VM\'s QEMU process (user + system)', labelNames: vmLabels, ...reg });
  const rss = new p.Gauge({ name: 'grove_vm_memory_rss_bytes', help: 'Resident memory of the VM\'s QEMU process', labelNames: vmLabels, ...reg });
  const readBytes = new p.Counter({ name: 'grove_vm_disk_read_bytes_total', help: 'Bytes read from the VM\'s disk (QMP query-blockstats)', labelNames: vmLabels, ...reg });
  const writeBytes = new p.Counter({ name: 'grove_vm_disk_written_bytes_total', help: 'Bytes written to the VM\'s disk (QMP query-blockstats)', labelNames: vmLabels, ...reg });
  const readOps = new p.Counter({ name: 'grove_vm_disk_read_operations_total', help: 'Read operations on the VM\'s disk', labelNames: vmLabels, ...reg });
  const writeOps = new p.Counter({ name: 'grove_vm_disk_write_operations_total', help: 'Write operations on the VM\'s disk', labelNames: vmLabels, ...reg });
  for (const vm of sample.vms) {
    const l = { vm: vm.name, id: vm.id };
    for (const s of VM_STATES) state.set({ ...l, state: s }, s === vm.state ? 1 : 0);
    if (vm.uptimeSeconds !== null) uptime.set(l, vm.uptimeSeconds);
    if (vm.usage) {
      cpu.inc(l, vm.usage.cpuSeconds);
      rss.set(l, vm.usage.rssBytes);
      readBytes.inc(l, vm.usage.disk.readBytes);
      writeBytes.inc(l, vm.usage.disk.writeBytes);
      readOps.inc(l, vm.usage.disk.readOps);
      writeOps.inc(l, vm.usage.disk.writeOps);
    }
  }

  const requests = new p.Counter({ name: 'grove_http_requests_total', help: 'API requests answered, by route pattern and status', labelNames: ['method', 'route', 'status'], ...reg });
  for (const r of face.requests.requests()) requests.inc({ method: r.method, route: r.route, status: String(r.status) }, r.count);
  registry.registerMetric(latencyHistogram(face.requests) as unknown as Metric);

  const streams = new p.Gauge({ name: 'grove_event_stream_clients', help: 'Event stream consumers attached now', labelNames: ['transport'], ...reg });
  for (const [transport, n] of Object.entries(face.streams.counts())) streams.set({ transport }, n);
  new p.Gauge({ name: 'grove_event_log_events', help: 'Events retained in the event log (what replay can serve)', ...reg }).set(sample.events.retained);
  new p.Counter({ name: 'grove_events_total', help: 'Events recorded since the data directory was made (the latest event id)', ...reg }).inc(sample.events.latestId);

  const w = sample.webhooks;
  const attempts = new p.Counter({ name: 'grove_webhook_delivery_attempts_total', help: 'Webhook delivery attempts since the daemon started, by outcome (delivered, retry: failed and rescheduled, failed: given up)', labelNames: ['outcome'], ...reg });
  for (const outcome of ['delivered', 'retry', 'failed'] as const) attempts.inc({ outcome }, w.outcomes[outcome]);
  new p.Gauge({ name: 'grove_webhook_deliveries_pending', help: 'Webhook deliveries not finished yet', ...reg }).set(w.pending);
  new p.Gauge({ name: 'grove_webhook_oldest_pending_age_seconds', help: 'Age of the oldest unfinished webhook delivery (0 when none is pending)', ...reg }).set(w.oldestPendingAgeSeconds ?? 0);

  const cpuUse = process.cpuUsage();
  new p.Counter({ name: 'process_cpu_seconds_total', help: 'CPU time used by the daemon (user + system)', ...reg }).inc((cpuUse.user + cpuUse.system) / 1e6);
  new p.Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory of the daemon', ...reg }).set(process.memoryUsage.rss());
  new p.Gauge({ name: 'process_start_time_seconds', help: 'When the daemon started (Unix time)', ...reg }).set(Math.round((Date.now() - process.uptime() * 1000) / 1000));
  new p.Gauge({ name: 'grove_build_info', help: 'The daemon\'s version (always 1)', labelNames: ['version'], ...reg }).set({ version }, 1);
  return registry.metrics();
}

/**
 * The request-latency histogram from the buckets RequestStats keeps. prom-client's Histogram can only be
 * fed single observations, so this is a metric object of the shape its registry renders (`get()`).
 */
function latencyHistogram(stats: RequestStats) {
  const name = 'grove_http_request_duration_seconds';
  return {
    name,
    help: 'Time from a request\'s arrival to its answer, by route pattern',
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({
      name, help: 'Time from a request\'s arrival to its answer, by route pattern', type: 'histogram', aggregator: 'sum',
      values: stats.latency().flatMap((l) => [
        ...LATENCY_BUCKETS_SECONDS.map((le, i) => ({ metricName: `${name}_bucket`, labels: { method: l.method, route: l.route, le }, value: l.buckets[i]! })),
        { metricName: `${name}_bucket`, labels: { method: l.method, route: l.route, le: '+Inf' }, value: l.count },
        { metricName: `${name}_sum`, labels: { method: l.method, route: l.route }, value: l.sumSeconds },
        { metricName: `${name}_count`, labels: { method: l.method, route: l.route }, value: l.count },
      ]),
    }),
  };
}

