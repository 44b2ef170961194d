import { errorMessage } from '../util/errors.js';
import type { GroveClient } from './client.js';
import { UnreachableError, apiErrorFrom, networkReason } from './errors.js';
import type { GroveEvent } from './types.js';

export interface FollowOptions {
  /** Comma-separated types or prefix wildcards (`vm.*,snapshot.created`). */
  types?: string | undefined;
  /** Only events of this VM (id or name). */
  vm?: string | undefined;
  /** Replay the persisted events after this id first. */
  since?: number | undefined;
  signal?: AbortSignal;
  /** Stream records that are not events: `resync` (replay gap) and `overflow` (we fell behind and were cut off). */
  onNotice?: (kind: string, data: unknown) => void;
  /** How long to keep trying to reconnect after the stream drops (the daemon restarting); default 30 s. */
  reconnectForMs?: number;
  /**
   * Called each time the stream is open: the daemon subscribes before it answers, so anything published
   * after this call is delivered (start an operation here to see all of its events).
   */
  onConnected?: () => void;
}

interface SseRecord { id?: string; event?: string; data: string }

/**
 * Follows `/api/v1/events` over SSE. A dropped stream is reconnected with `Last-Event-ID`, so nothing is
 * lost across a daemon restart; the first connection failing is an error (ApiError / UnreachableError).
 */
export async function* followEvents(client: GroveClient, opts: FollowOptions = {}): AsyncGenerator<GroveEvent> {
  let lastId = opts.since;
  let connectedOnce = false;
  let retryUntil = 0;
  for (;;) {
    let res: Response;
    try {
      res = await client.fetchRaw('GET', '/events', {
        query: { types: opts.types, vm: opts.vm },
        headers: { accept: 'text/event-stream', ...(lastId !== undefined ? { 'last-event-id': String(lastId) } : {}) },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      if (!connectedOnce || !(e instanceof UnreachableError) || Date.now() > retryUntil) throw e;
      await sleep(500, opts.signal);
      continue;
    }
    if (!res.ok) throw apiErrorFrom(res.status, res.statusText, await res.text().catch(() => ''));
    connectedOnce = true;
    opts.onConnected?.();
    try {
      for await (const rec of sseRecords(res)) {
        if (rec.event === undefined || rec.data === '') continue;
        const data: unknown = JSON.parse(rec.data);
        if (rec.event === 'resync' || rec.event === 'overflow') {
          opts.onNotice?.(rec.event, data);
          continue;
        }
        const ev = data as GroveEvent;
        lastId = ev.id;
        yield ev;
      }
    } catch (e) {
      if ((e as Error).name === 'AbortError' || opts.signal?.aborted) return;
      if (!(e instanceof TypeError) && !isNetworkError(e)) throw e;
    }
    if (opts.signal?.aborted) return;
    retryUntil = Date.now() + (opts.reconnectForMs ?? 30_000);
    await sleep(200, opts.signal);
  }
}

function isNetworkError(e: unknown): boolean {
  return typeof (e as { code?: unknown }).code === 'string' || networkReason(e) !== errorMessage(e);
}

async function* sseRecords(res: Response): AsyncGenerator<SseRecord> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let end: number;
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const rec: SseRecord = { data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(value);
        else if (field === 'id') rec.id = value;
        else if (field === 'event') rec.event = value;
      }
      rec.data = data.join('\n');
      yield rec;
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
