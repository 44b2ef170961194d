import type { TestDaemon } from './daemon.js';

/** An event envelope as the daemon sends it (SPEC §6). */
export interface EventEnvelope {
  id: number;
  type: string;
  timestamp: string;
  vmId?: string;
  vmName?: string;
  data: Record<string, any>;
}

interface SseRecord { id?: string; event?: string; data: string }

/**
 * Streams `/api/v1/events` as SSE, replaying after `since`, and hands every envelope to `onEvent` until it
 * returns true (the stream is then closed) or `timeoutMs` passes (rejects). `onConnected` receives the
 * latest event id the server announced in its greeting comment.
 */
async function streamEvents(
  d: TestDaemon,
  opts: { since?: number; query?: string; timeoutMs?: number },
  onEvent: (e: EventEnvelope, latestAtConnect: number) => boolean,
  onConnected?: (latest: number) => boolean,
): Promise<void> {
  const ac = new AbortController();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const qs = new URLSearchParams();
  if (opts.since !== undefined) qs.set('since', String(opts.since));
  const extra = opts.query ? `&${opts.query}` : '';
  const timer = setTimeout(() => ac.abort(new Error(`no matching event within ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await fetch(`${d.api}/events?${qs.toString()}${extra}`, {
      headers: { authorization: `Bearer ${d.token}`, accept: 'text/event-stream' },
      signal: ac.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`events stream answered ${res.status}: ${await res.text()}`);
    const decoder = new TextDecoder();
    let buf = '';
    let latest = -1;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended before a matching event');
        buf += decoder.decode(value, { stream: true });
        let sep: number;
        while ((sep = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, sep);
          buf = buf.slice(sep + 2);
          const rec: SseRecord = { data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) {
              const m = /latest event id (\d+)/.exec(line);
              if (m) {
                latest = Number(m[1]);
                if (onConnected?.(latest)) return;
              }
              continue;
            }
            const i = line.indexOf(':');
            const field = i === -1 ? line : line.slice(0, i);
            const val = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'id') rec.id = val;
            else if (field === 'event') rec.event = val;
            else if (field === 'data') rec.data += (rec.data ? '\n' : '') + val;
          }
          if (rec.id === undefined || !rec.data) continue;
          const e = JSON.parse(rec.data) as EventEnvelope;
          if (onEvent(e, latest)) return;
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  } catch (e) {
    if (ac.signal.aborted) throw ac.signal.reason instanceof Error ? ac.signal.reason : new Error(String(ac.signal.reason));
    throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/** Every persisted event after `since` (default: all), as replayed by the SSE endpoint. */
export async function readEvents(d: TestDaemon, since = 0): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = [];
  await streamEvents(d, { since, timeoutMs: 15_000 },
    (e, latest) => { out.push(e); return e.id >= latest; },
    (latest) => latest <= since);
  return out;
}

/** The id of the newest persisted event (0 when there is none). */
export async function latestEventId(d: TestDaemon): Promise<number> {
  let latest = 0;
  await streamEvents(d, { timeoutMs: 10_000 }, () => false, (l) => { latest = l; return true; });
  return latest;
}

/** Waits for the first event after `since` that satisfies `pred` (replayed or live). */
export async function waitForEvent(
  d: TestDaemon,
  pred: (e: EventEnvelope) => boolean,
  opts: { since?: number; timeoutMs?: number } = {},
): Promise<EventEnvelope> {
  let found: EventEnvelope | undefined;
  await streamEvents(d, { since: opts.since ?? 0, timeoutMs: opts.timeoutMs ?? 30_000 }, (e) => {
    if (pred(e)) { found = e; return true; }
    return false;
  });
  return found!;
}
