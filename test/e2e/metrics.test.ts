/**
 * End to end for /metrics in the Prometheus text format: the real daemon, a running test guest under real
 * QEMU, a real webhook receiver and SSE consumer, scraped the way Prometheus scrapes (its Accept header)
 * and with ?format=prometheus; JSON stays the default.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertOk, assertProblem, rawCall, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { SseClient } from '../helpers/sse.js';

const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

let d: TestDaemon;
let receiver: Server;
let received = 0;
let vmId: string;

before(async () => {
  d = await startDaemon();
  receiver = createServer((req, res) => { req.resume(); req.on('end', () => { received++; res.end('ok'); }); });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  vmId = (await createGuestVm(d, 'm')).id;
});
after(async () => {
  await d?.cleanup();
  receiver?.close();
});

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Exposition { samples: Sample[]; types: Map<string, string>; helps: Set<string> }

/** A strict reader of the text format (version 0.0.4): any line it does not understand fails the test. */
function parse(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const out: Exposition = { samples: [], types: new Map(), helps: new Set() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    if (m) { out.helps.add(m[1]!); continue; }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) { out.types.set(m[1]!, m[2]!); continue; }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
      const eq = pair.indexOf('=');
      labels[pair.slice(0, eq)] = JSON.parse(pair.slice(eq + 1));
    }
    out.samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(how: 'accept' | 'query' = 'accept'): Promise<Exposition> {
  const r = how === 'accept'
    ? await rawCall(d, 'GET', '/metrics', { headers: { accept: PROMETHEUS_ACCEPT } })
    : await rawCall(d, 'GET', '/metrics?format=prometheus');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parse(r.body as string);
}

function value(x: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = x.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)} names one series (${hits.length})`);
  return hits[0]?.value;
}

test('a running VM: its state, uptime, CPU seconds, RSS and disk counters as QEMU reports them', async () => {
  await startReady(d, 'm', { acpi: false });
  // The guest's shell reads from its disk: a read through QEMU's block layer.
  assertOk(await d.call('POST', '/vms/m/console/execute', { command: 'cat /mnt/disk/* 2>/dev/null; sync; echo done', timeoutSeconds: 30 }), 200, 'execute');
  const x = await scrape();
  const l = { vm: 'm', id: vmId };
  assert.equal(value(x, 'grove_vm_state', { ...l, state: 'running' }), 1);
  for (const s of ['stopped', 'paused', 'error', 'provisioning']) assert.equal(value(x, 'grove_vm_state', { ...l, state: s }), 0, s);
  assert.ok(value(x, 'grove_vm_uptime_seconds', l)! > 0);
  assert.ok(value(x, 'grove_vm_cpu_seconds_total', l)! > 0, 'TCG burns CPU while it boots');
  assert.ok(value(x, 'grove_vm_memory_rss_bytes', l)! > 16 * 1024 * 1024, 'QEMU holds more than 16 MiB');
  assert.ok(value(x, 'grove_vm_disk_read_bytes_total', l)! > 0);
  assert.ok(value(x, 'grove_vm_disk_read_operations_total', l)! > 0);
  assert.equal(x.types.get('grove_vm_cpu_seconds_total'), 'counter');
  assert.equal(x.types.get('grove_vm_memory_rss_bytes'), 'gauge');
  // Every series has its HELP and TYPE; counters end in _total (Prometheus naming).
  for (const s of x.samples) {
    const family = s.name.replace(/_(bucket|sum|count)$/, (m) => (x.types.has(s.name) ? m : ''));
    assert.ok(x.types.has(family), `TYPE for ${s.name}`);
    assert.ok(x.helps.has(family), `HELP for ${s.name}`);
    if (x.types.get(family) === 'counter') assert.match(family, /_total$/);
  }

  // The same through ?format=prometheus; the CPU counter only grows.
  const y = await scrape('query');
  assert.ok(value(y, 'grove_vm_cpu_seconds_total', l)! >= value(x, 'grove_vm_cpu_seconds_total', l)!);

  assertOk(await d.call('POST', '/vms/m/pause'), 200, 'pause');
  const z = await scrape();
  assert.equal(value(z, 'grove_vm_state', { ...l, state: 'paused' }), 1);
  assert.equal(value(z, 'grove_vm_state', { ...l, state: 'running' }), 0);
  assertOk(await d.call('POST', '/vms/m/force-stop'), 200, 'force stop');
  const s = await scrape();
  assert.equal(value(s, 'grove_vm_state', { ...l, state: 'stopped' }), 1);
  assert.equal(value(s, 'grove_vm_cpu_seconds_total', l), undefined, 'no process, no CPU series');
  assert.equal(value(s, 'grove_vm_uptime_seconds', l), undefined);
});

test('API requests are counted by route pattern and status, with a latency histogram', async () => {
  const before = await scrape();
  const key = { method: 'GET', route: '/api/v1/vms/:id', status: '200' };
  const missing = { method: 'GET', route: '/api/v1/vms/:id', status: '404' };
  for (let i = 0; i < 3; i++) assertOk(await d.call('GET', '/vms/m'), 200, 'get');
  assert.equal((await d.call('GET', '/vms/nope')).status, 404);
  const after = await scrape();
  assert.equal(value(after, 'grove_http_requests_total', key)! - (value(before, 'grove_http_requests_total', key) ?? 0), 3);
  assert.equal(value(after, 'grove_http_requests_total', missing)! - (value(before, 'grove_http_requests_total', missing) ?? 0), 1);
  assert.equal(after.samples.filter((s) => s.name === 'grove_http_requests_total' && s.labels['route']?.includes('/vms/m')).length, 0, 'raw URLs never become labels');

  const h = { method: 'GET', route: '/api/v1/vms/:id' };
  const buckets = after.samples.filter((s) => s.name === 'grove_http_request_duration_seconds_bucket' && s.labels['route'] === h.route && s.labels['method'] === 'GET');
  assert.equal(buckets.at(-1)!.labels['le'], '+Inf');
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative buckets');
  assert.equal(buckets.at(-1)!.value, value(after, 'grove_http_request_duration_seconds_count', h));
  assert.equal(value(after, 'grove_http_request_duration_seconds_count', h)! - (value(before, 'grove_http_request_duration_seconds_count', h) ?? 0), 4);
  assert.ok(value(after, 'grove_http_request_duration_seconds_sum', h)! > 0);
  assert.equal(after.types.get('grove_http_request_duration_seconds'), 'histogram');
});

test('MCP calls are counted under POST /mcp, whichever path answers them', async () => {
  const key = { method: 'POST', route: '/mcp', status: '200' };
  const before = value(await scrape(), 'grove_http_requests_total', key) ?? 0;
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_vm', arguments: { vm: 'm' } } };
  const headers = { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' };
  // A plain POST takes the fast lane; one with a query string goes through Fastify's route.
  for (const url of [`${d.url}/mcp`, `${d.url}/mcp`, `${d.url}/mcp?via=route`]) {
    const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(call) });
    assert.equal(r.status, 200, url);
    assert.equal(((await r.json()) as { result: { structuredContent: { name: string } } }).result.structuredContent.name, 'm');
  }
  assert.equal(value(await scrape(), 'grove_http_requests_total', key)! - before, 3);
});

test('event log size, event stream clients, webhook deliveries by outcome and the backlog', async () => {
  const sse = await SseClient.open(`${d.api}/events`, { headers: { authorization: `Bearer ${d.token}` } });
  try {
    const x = await scrape();
    assert.equal(value(x, 'grove_event_stream_clients', { transport: 'sse' }), 1);
    assert.equal(value(x, 'grove_event_stream_clients', { transport: 'websocket' }), 0);
    assert.ok(value(x, 'grove_event_log_events')! > 0);
  } finally {
    sse.close();
  }
  await waitFor('the SSE client counted out', async () => value(await scrape(), 'grove_event_stream_clients', { transport: 'sse' }) === 0);

  const port = (receiver.address() as AddressInfo).port;
  assertOk(await d.call('POST', '/webhooks', { url: `http://127.0.0.1:${port}/hook`, events: ['vm.*'] }), 201, 'webhook');
  assertOk(await d.call('PATCH', '/vms/m', { cpu: 2 }), 200, 'update');
  assertOk(await d.call('PATCH', '/vms/m', { cpu: 1 }), 200, 'update');
  await waitFor('two deliveries', async () => received === 2);
  const y = await waitFor('the deliveries recorded', async () => {
    const s = await scrape();
    return value(s, 'grove_webhook_deliveries_pending') === 0 ? s : null;
  });
  assert.equal(value(y, 'grove_webhook_delivery_attempts_total', { outcome: 'delivered' }), 2);
  assert.equal(value(y, 'grove_webhook_delivery_attempts_total', { outcome: 'retry' }), 0);
  assert.equal(value(y, 'grove_webhook_delivery_attempts_total', { outcome: 'failed' }), 0);
  assert.equal(value(y, 'grove_webhook_oldest_pending_age_seconds'), 0);
  assert.ok(value(y, 'process_resident_memory_bytes')! > 0);
  assert.equal(value(y, 'grove_build_info', { version: (await d.call('GET', '/health')).body.version }), 1);
});

test('JSON stays the default; a bad format is a 400', async () => {
  for (const accept of ['*/*', 'application/json', 'application/json, text/plain']) {
    const r = await rawCall(d, 'GET', '/metrics', { headers: { accept } });
    assert.equal(r.status, 200, accept);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/, accept);
    assert.ok(Array.isArray((r.body as any).vms), accept);
  }
  const json = await rawCall(d, 'GET', '/metrics?format=json', { headers: { accept: PROMETHEUS_ACCEPT } });
  assert.match(json.headers.get('content-type') ?? '', /^application\/json/, 'the query wins over Accept');
  assertProblem(await d.call('GET', '/metrics?format=xml'), 400, 'VALIDATION_FAILED');
});
