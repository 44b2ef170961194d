import { request, type IncomingHttpHeaders, type ClientRequest, type IncomingMessage } from 'node:http';
import { Waiters } from './waiters.js';

/** One dispatched Server-Sent Events record (comments are kept apart, in `comments`). */
export interface SseRecord {
  id?: string;
  event?: string;
  data: string;
  /** `data` parsed as JSON when it is JSON. */
  json?: any;
}

export interface SseOpenOptions {
  headers?: Record<string, string>;
  /** Give up if no response head arrives in this time. */
  timeoutMs?: number;
}

/**
 * A real SSE client over node:http with a spec-conformant parser (WHATWG "event stream interpretation"):
 * lines end in CRLF, LF or CR; `data` lines join with LF; a blank line dispatches; `:` lines are comments.
 * Non-2xx answers are kept as `status` + `body` instead of being parsed as a stream.
 */
export class SseClient {
  readonly records: SseRecord[] = [];
  readonly comments: string[] = [];
  /** Raw text received (only for non-event-stream answers, or when `keepRaw`). */
  body = '';
  ended = false;
  error: Error | null = null;
  private buf = '';
  private cur: { id?: string; event?: string; data: string[] } = { data: [] };
  private readonly waiters = new Waiters('SSE', () => `got ${this.records.length} records, types ${summarize(this.records)}`);

  private constructor(readonly req: ClientRequest, readonly res: IncomingMessage) {}

  get status(): number { return this.res.statusCode ?? 0; }
  get headers(): IncomingHttpHeaders { return this.res.headers; }

  /** Event envelopes only (records whose data is a Grove event, i.e. not resync/overflow notices). */
  get events(): any[] {
    return this.envelopes;
  }

  private readonly envelopes: any[] = [];

  static open(url: string, opts: SseOpenOptions = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', headers: { accept: 'text/event-stream', ...(opts.headers ?? {}) } });
      const timer = setTimeout(() => { req.destroy(new Error(`no response from ${url}`)); }, opts.timeoutMs ?? 15_000);
      req.once('error', (e) => { clearTimeout(timer); reject(e); });
      req.once('response', (res) => {
        clearTimeout(timer);
        const c = new SseClient(req, res);
        const isStream = /^text\/event-stream/.test(String(res.headers['content-type'] ?? ''));
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (isStream) c.feed(chunk); else c.body += chunk;
          c.waiters.wake();
        });
        res.on('end', () => { c.ended = true; c.waiters.wake(); });
        res.on('close', () => { c.ended = true; c.waiters.wake(); });
        res.on('error', (e) => { c.error = e; c.ended = true; c.waiters.wake(); });
        req.on('error', (e) => { c.error = e; c.ended = true; c.waiters.wake(); });
        resolve(c);
      });
      req.end();
    });
  }

  /** Body as JSON (for refused requests). */
  async json(): Promise<any> {
    await this.until('response end', () => this.ended, 10_000);
    return JSON.parse(this.body);
  }

  private feed(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buf);
      if (!m) break;
      // A lone CR at the very end may be the first half of a CRLF: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.cur.data.length > 0 || this.cur.event !== undefined || this.cur.id !== undefined) {
        const data = this.cur.data.join('\n');
        const r: SseRecord = { data };
        if (this.cur.id !== undefined) r.id = this.cur.id;
        if (this.cur.event !== undefined) r.event = this.cur.event;
        try { r.json = JSON.parse(data); } catch { /* not JSON */ }
        this.records.push(r);
        if (r.event !== 'resync' && r.event !== 'overflow' && r.json && typeof r.json.id === 'number') this.envelopes.push(r.json);
      }
      this.cur = { data: [] };
      return;
    }
    if (line.startsWith(':')) { this.comments.push(line.slice(1).trimStart()); return; }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.cur.data.push(value);
    else if (field === 'event') this.cur.event = value;
    else if (field === 'id') this.cur.id = value;
    // `retry` and unknown fields are ignored, as a browser would.
  }

  /** Resolves once `pred()` holds (re-checked on every chunk); rejects after `timeoutMs`. */
  until(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
    return this.waiters.until(what, pred, timeoutMs);
  }

  /** Waits for the first event envelope matching `pred` and returns it. */
  next(what: string, pred: (e: any) => boolean, timeoutMs = 30_000): Promise<any> {
    return this.waiters.first(what, () => this.events, pred, timeoutMs);
  }

  close(): void {
    this.res.destroy();
    this.req.destroy();
  }
}

function summarize(records: SseRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.event ?? 'message', (counts.get(r.event ?? 'message') ?? 0) + 1);
  return JSON.stringify(Object.fromEntries(counts));
}
