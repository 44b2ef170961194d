import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LATENCY_BUCKETS_SECONDS, RequestStats } from './request-stats.js';
import { StreamClients } from '../stream/stream-clients.js';

test('requests are counted by method, route and status; latencies fill cumulative buckets', () => {
  const s = new RequestStats();
  s.record('GET', '/api/v1/vms', 200, 0.002);
  s.record('GET', '/api/v1/vms', 200, 0.02);
  s.record('GET', '/api/v1/vms', 500, 400);
  s.record('POST', '/api/v1/vms', 201, 0.001);
  assert.deepEqual(s.requests().sort((a, b) => `${a.method}${a.status}`.localeCompare(`${b.method}${b.status}`)), [
    { method: 'GET', route: '/api/v1/vms', status: 200, count: 2 },
    { method: 'GET', route: '/api/v1/vms', status: 500, count: 1 },
    { method: 'POST', route: '/api/v1/vms', status: 201, count: 1 },
  ]);
  const get = s.latency().find((l) => l.method === 'GET')!;
  assert.equal(get.count, 3);
  assert.equal(get.sumSeconds, 400.022);
  const at = (le: number) => get.buckets[LATENCY_BUCKETS_SECONDS.indexOf(le as never)];
  assert.deepEqual([at(0.001), at(0.005), at(0.01), at(0.025), at(300)], [0, 1, 1, 2, 2], 'the 400 s request is only in +Inf');
  const post = s.latency().find((l) => l.method === 'POST')!;
  assert.deepEqual(post.buckets, LATENCY_BUCKETS_SECONDS.map(() => 1), '1 ms is within every bucket (le is inclusive)');
});

test('stream clients are counted in and out once per consumer', () => {
  const c = new StreamClients();
  const a = c.attach('sse');
  c.attach('websocket');
  const b = c.attach('sse');
  assert.deepEqual(c.counts(), { sse: 2, websocket: 1 });
  a(); a();
  b();
  assert.deepEqual(c.counts(), { sse: 0, websocket: 1 });
});
