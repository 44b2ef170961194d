import { createServer, type Server } from 'node:http';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { ApiClient } from './lib/http.js';
import { fmtMs, nowMs, resultLine, summarize, type BenchResult } from './lib/stats.js';

export interface WebhooksOptions {
  /** Sequential events for the latency figures. */
  sequential: number;
  warmup: number;
  /** Events published back to back for the throughput figure. */
  burst: number;
  /** Keep-alive connections the burst is published over. */
  connections: number;
}

export const WEBHOOKS_DEFAULTS: WebhooksOptions = { sequential: 200, warmup: 20, burst: 1000, connections: 4 };

/**
 * (e) webhooks: a receiver (node:http on 127.0.0.1, answering 200 at once) registered with a secret, so
 * every delivery is signed. Events are `webhook.test` events published with `POST /webhooks/:id/test`
 * (cheap, and routed like any event through the outbox and worker).
 *   latency: from sending the POST until the receiver has the delivery, one event at a time; the
 *            reference is the round trip of that POST alone (the trigger, no delivery waited for).
 *   burst:   N POSTs sent back to back over a few keep-alive connections; every event must arrive exactly
 *            once (the receiver acknowledges each), and the rate is N / (first POST → last delivery).
 */
export async function benchWebhooks(o: WebhooksOptions = WEBHOOKS_DEFAULTS): Promise<BenchResult> {
  const arrivals = new Map<number, number>();
  const deliveryIds = new Map<number, Set<string>>();
  let hits = 0;
  const waiters = new Map<number, () => void>();
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const t = nowMs();
      hits++;
      const ev = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number };
      if (!arrivals.has(ev.id)) arrivals.set(ev.id, t);
      const ids = deliveryIds.get(ev.id) ?? new Set<string>();
      ids.add(String(req.headers['x-nemeton-delivery']));
      deliveryIds.set(ev.id, ids);
      res.writeHead(200).end();
      waiters.get(ev.id)?.();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const closeReceiver = onCleanup('webhook receiver', () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  const bd = await startBenchDaemon('webhooks');
  try {
    const hook = await bd.client.ok('POST', '/webhooks', { url: `http://127.0.0.1:${port}/hook`, secret: 'bench-secret-0123456789' }, 201) as { id: string };
    const fire = async (client = bd.client): Promise<number> => ((await client.ok('POST', `/webhooks/${hook.id}/test`, undefined, 202)) as { eventId: number }).eventId;
    /** Resolves when the receiver has the event; the event id is only known once the POST answers, so arrivals may come first. */
    const arrived = (id: number): Promise<void> => (arrivals.has(id) ? Promise.resolve() : new Promise((r) => waiters.set(id, () => { waiters.delete(id); r(); })));
    const withTimeout = async <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not delivered within ${ms} ms`)), ms); });
      try { return await Promise.race([p, expired]); } finally { clearTimeout(timer); }
    };

    // Latency, one event at a time.
    const latency: number[] = [];
    const trigger: number[] = [];
    for (let i = 0; i < o.warmup + o.sequential; i++) {
      const t0 = nowMs();
      const id = await fire();
      const t1 = nowMs();
      await withTimeout(arrived(id), 10_000, `event ${id}`);
      if (i >= o.warmup) { latency.push(arrivals.get(id)! - t0); trigger.push(t1 - t0); }
    }

    // Burst: all POSTs queued at once, spread over the connections.
    const clients = Array.from({ length: o.connections }, () => new ApiClient(bd.api, bd.token));
    const closeClients = onCleanup('burst clients', () => { for (const c of clients) c.close(); });
    const hitsBefore = hits;
    const t0 = nowMs();
    const ids = await Promise.all(Array.from({ length: o.burst }, (_, i) => fire(clients[i % clients.length])));
    const published = nowMs();
    await withTimeout(Promise.all(ids.map(arrived)), 120_000, 'burst');
    const last = Math.max(...ids.map((id) => arrivals.get(id)!));
    const burstHits = hits - hitsBefore;
    const dupes = ids.filter((id) => deliveryIds.get(id)!.size !== 1).length;
    if (new Set(ids).size !== o.burst) throw new Error('burst: event ids not distinct');
    if (dupes > 0) throw new Error(`burst: ${dupes} events got more than one delivery id`);
    if (burstHits !== o.burst) throw new Error(`burst: ${burstHits} requests for ${o.burst} events (an acknowledged delivery was sent twice)`);
    const rate = o.burst / ((last - t0) / 1000);
    await closeClients();

    const lat = summarize(latency);
    const trig = summarize(trigger);
    const res = resultLine('webhooks', `event→receiver p50 ${fmtMs(lat.p50)} p99 ${fmtMs(lat.p99)}; burst ${rate.toFixed(0)} events/s`,
      `trigger POST alone p50 ${fmtMs(trig.p50)} p99 ${fmtMs(trig.p99)}`, lat.p50 / trig.p50, null);
    res.details.push(
      `  latency: ${o.sequential} sequential webhook.test events after ${o.warmup} warm-up, from sending POST /webhooks/:id/test to the receiver having the signed delivery: mean ${fmtMs(lat.mean)} p50 ${fmtMs(lat.p50)} p99 ${fmtMs(lat.p99)} max ${fmtMs(lat.max)}`,
      `  burst: ${o.burst} events over ${o.connections} connections, all delivered exactly once (${burstHits} requests, 0 duplicates); published in ${fmtMs(published - t0)} (${(o.burst / ((published - t0) / 1000)).toFixed(0)}/s), last delivery ${fmtMs(last - t0)} after the first POST (${fmtMs(Math.max(0, last - published))} after the last POST was answered) → ${rate.toFixed(0)} events/s delivered`,
    );
    return res;
  } finally {
    await bd.close();
    await closeReceiver();
  }
}
