import type { EventFilter, GroveEvent } from '../../domain/events.js';
import { isValidTypePattern } from '../../domain/events.js';
import { invalid } from '../../domain/errors.js';
import type { EventBus, Gap, Subscription } from '../../events/event-bus.js';

/** How much a consumer may fall behind before it is disconnected (it can reconnect and replay). */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export function parseFilter(types: string | undefined, vmId: string | undefined): EventFilter {
  const list = (types ?? '').split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  for (const t of list) {
    if (!isValidTypePattern(t)) throw invalid(`unknown event type or pattern '${t}'`, { field: 'types' });
  }
  return vmId === undefined ? { types: list } : { types: list, vmId };
}

export interface StreamSink {
  /** Bytes queued but not yet taken by the consumer. */
  buffered(): number;
  send(e: GroveEvent): void;
  resync(gap: Gap): void;
  overflow(reason: string): void;
}

/**
 * Connects one consumer to the bus. Delivery is a synchronous write into the transport's buffer; when
 * that buffer passes the limit the consumer is dropped with a reason — the daemon never waits for it.
 */
export function attachStream(bus: EventBus, filter: EventFilter, afterId: number | undefined, sink: StreamSink): () => void {
  let dead = false;
  const deliver = (e: GroveEvent): void => {
    if (dead) return;
    if (sink.buffered() > MAX_BUFFERED_BYTES) {
      dead = true;
      sink.overflow(`slow consumer: more than ${MAX_BUFFERED_BYTES} bytes pending; reconnect with the last id to replay`);
      sub?.close();
      return;
    }
    sink.send(e);
  };
  let sub: Subscription | undefined;
  const gap = afterId !== undefined ? bus.gapBefore(afterId) : null;
  if (gap) sink.resync(gap);
  sub = bus.subscribe(filter, deliver, afterId);
  return () => { dead = true; sub?.close(); };
}
