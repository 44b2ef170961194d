import { Agent } from 'node:http';
import WebSocket from 'ws';
import { Waiters } from './waiters.js';

export type WsOutcome =
  | { kind: 'open'; client: WsClient }
  | { kind: 'rejected'; status: number; body: string; headers: Record<string, unknown> }
  | { kind: 'error'; error: Error };

/**
 * A WebSocket client (the `ws` package) that records every message as it arrives — listeners are attached
 * before the handshake completes, so nothing sent right after the upgrade (e.g. a replay) is missed.
 */
export class WsClient {
  readonly messages: (string | Buffer)[] = [];
  /** Text messages parsed as JSON once, on arrival (undefined when not JSON). */
  private readonly parsed: any[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly waiters = new Waiters('WebSocket', () =>
    `got ${this.messages.length} messages${this.closed ? `, closed ${this.closed.code} ${this.closed.reason}` : ''}`);

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        this.messages.push(buf);
      } else {
        const text = buf.toString('utf8');
        this.messages.push(text);
        try { this.parsed.push(JSON.parse(text)); } catch { this.parsed.push(undefined); }
      }
      this.waiters.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => { this.closed = { code, reason: reason.toString() }; this.waiters.wake(); });
    ws.on('error', () => { /* 'close' follows */ });
  }

  /** Text messages parsed as JSON. */
  get json(): any[] {
    return this.parsed;
  }

  /** Event envelopes only (not resync notices). */
  get events(): any[] {
    return this.parsed.filter((m) => m && typeof m.id === 'number' && m.type !== 'resync');
  }

  /**
   * Connects; resolves with the open client, or with the HTTP answer when the upgrade is refused.
   */
  static connect(url: string, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<WsOutcome> {
    return new Promise((resolve) => {
      // A private agent without keep-alive: a refused upgrade must not leave a pooled connection behind.
      const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, agent: new Agent({ keepAlive: false }) });
      const client = new WsClient(ws);
      let settled = false;
      const settle = (o: WsOutcome): void => { if (!settled) { settled = true; resolve(o); } };
      ws.once('open', () => settle({ kind: 'open', client }));
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        const done = (): void => {
          settle({ kind: 'rejected', status: res.statusCode ?? 0, body, headers: { ...res.headers } });
          // With an 'unexpected-response' listener, `ws` leaves the connection to the caller: drop it.
          req.destroy();
        };
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', done);
        res.on('error', done);
      });
      ws.once('error', (e) => settle({ kind: 'error', error: e }));
    });
  }

  /** Connects and insists on an open socket. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    const o = await WsClient.connect(url, headers);
    if (o.kind === 'open') return o.client;
    throw new Error(`WebSocket ${url} did not open: ${o.kind === 'rejected' ? `HTTP ${o.status} ${o.body}` : o.error.message}`);
  }

  until(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
    return this.waiters.until(what, pred, timeoutMs);
  }

  next(what: string, pred: (e: any) => boolean, timeoutMs = 30_000): Promise<any> {
    return this.waiters.first(what, () => this.events, pred, timeoutMs);
  }

  waitClosed(timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
    return this.until('close', () => this.closed !== null, timeoutMs).then(() => this.closed!);
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}
