import type { TestDaemon } from './daemon.js';
import { SseClient } from './sse.js';

/** An event envelope as the daemon sends it (SPEC §6). */
export interface EventEnvelope {
  id: number;
  type: string;
  timestamp: string;
  vmId?: string;
  vmName?: string;
  data: Record<string, any>;
}

/**
 * Streams `/api/v1/events` as SSE, replaying after `since`, and hands every envelope to `onEvent` until it
 * returns true (the stream is then closed) or `timeoutMs` passes (rejects). `onConnected` receives the
 * latest event id the server announced in its greeting comment.
 */
async function streamEvents(
  d: TestDaemon,
  opts: { since?: number; timeoutMs?: number },
  onEvent: (e: EventEnvelope, latestAtConnect: number) => boolean,
  onConnected?: (latest: number) => boolean,
): Promise<void> {
  const query = opts.since === undefined ? '' : `?since=${opts.since}`;
  const c = await SseClient.open(`${d.api}/events${query}`, { headers: { authorization: `Bearer ${d.token}` } });
  try {
    if (c.status !== 200) {
      await c.until('the refusal', () => c.ended, 10_000);
      throw new Error(`events stream answered ${c.status}: ${c.body}`);
    }
    let latest = -1;
    let handed = 0;
    await c.until('a matching event', () => {
      if (latest === -1) {
        const m = c.comments.map((line) => /latest event id (\d+)/.exec(line)).find((x) => x !== null);
        if (m) {
          latest = Number(m[1]);
          if (onConnected?.(latest)) return true;
        }
      }
      while (handed < c.events.length) if (onEvent(c.events[handed++] as EventEnvelope, latest)) return true;
      if (c.ended) throw new Error(`event stream ended before a matching event${c.error ? `: ${c.error.message}` : ''}`);
      return false;
    }, opts.timeoutMs ?? 30_000);
  } finally {
    c.close();
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
