// The two event consumers of the soak: an SSE client that drops its connection now and then and comes back
// with Last-Event-ID (so replay is exercised under load), and a webhook receiver on 127.0.0.1.
import { createServer, type Server } from 'node:http';
import { SseClient } from '../helpers/sse.js';
import type { TestDaemon } from '../helpers/daemon.js';

export class SseCounter {
  /** Event ids in the order received, over every connection. */
  readonly ids: number[] = [];
  reconnects = 0;
  private client: SseClient | null = null;
  private handed = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastId: number;
  /** A reconnect that failed; reported by until(). */
  error: Error | null = null;

  private constructor(private readonly d: TestDaemon, since: number, private readonly reconnectEveryMs: number) {
    this.lastId = since;
  }

  static async start(d: TestDaemon, since: number, reconnectEveryMs: number): Promise<SseCounter> {
    const c = new SseCounter(d, since, reconnectEveryMs);
    await c.connect();
    return c;
  }

  private async connect(): Promise<void> {
    const c = await SseClient.open(`${this.d.api}/events`, { headers: { authorization: `Bearer ${this.d.token}`, 'last-event-id': String(this.lastId) } });
    if (c.status !== 200) throw new Error(`events stream answered ${c.status}`);
    this.client = c;
    this.handed = 0;
    this.timer = setTimeout(() => { this.cycle().catch((e: Error) => { this.error = e; }); }, this.reconnectEveryMs);
  }

  /** Reads what arrived; ids only (resync/overflow notices would show as a gap in the final check). */
  drain(): void {
    const c = this.client;
    if (!c) return;
    while (this.handed < c.events.length) {
      const e = c.events[this.handed++] as { id: number };
      this.ids.push(e.id);
      this.lastId = e.id;
    }
  }

  private async cycle(): Promise<void> {
    if (this.stopped) return;
    this.drain();
    this.client?.close();
    this.reconnects++;
    try { await this.connect(); } catch (e) { if (!this.stopped) throw e; }
  }

  /** Waits until `id` has been received (or throws after `timeoutMs`). */
  async until(id: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.drain();
      if (this.error) throw this.error;
      if (this.lastId >= id) return;
      if (Date.now() > deadline) throw new Error(`SSE consumer: event ${id} not received (last ${this.lastId})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.drain();
    this.client?.close();
  }
}

/** Replays every event after `since` up to `until` over one fresh SSE connection (Last-Event-ID). */
export async function replayIds(d: TestDaemon, since: number, until: number): Promise<number[]> {
  const c = await SseClient.open(`${d.api}/events`, { headers: { authorization: `Bearer ${d.token}`, 'last-event-id': String(since) } });
  try {
    await c.until(`replay up to ${until}`, () => c.events.some((e: { id: number }) => e.id >= until) || until <= since, 60_000);
    return c.events.map((e: { id: number }) => e.id).filter((id: number) => id <= until);
  } finally {
    c.close();
  }
}

/** A webhook receiver counting deliveries per event id (a retried delivery counts again). */
export class WebhookCounter {
  readonly seen = new Map<number, number>();
  deliveries = 0;
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<WebhookCounter> {
    let counter: WebhookCounter | null = null;
    const srv = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        try {
          const id = (JSON.parse(body) as { id: number }).id;
          counter!.deliveries++;
          counter!.seen.set(id, (counter!.seen.get(id) ?? 0) + 1);
        } catch { /* counted as missing later */ }
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(0, '127.0.0.1', () => resolve()); });
    const a = srv.address();
    counter = new WebhookCounter(srv, typeof a === 'object' && a ? a.port : 0);
    return counter;
  }

  get url(): string { return `http://127.0.0.1:${this.port}/soak`; }

  missing(ids: number[]): number[] { return ids.filter((id) => !this.seen.has(id)); }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
