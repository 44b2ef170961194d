import type { EventFilter, GroveEvent, NewEvent } from '../domain/events.js';
import { matchesFilter } from '../domain/events.js';
import type { EventRepo, Transact } from '../ports/repos.js';
import type { EventSink } from '../ports/event-sink.js';

export type Deliver = (e: GroveEvent) => void;

export interface Subscription {
  close(): void;
}

/** A replay request reaching past what the log still holds: the consumer has missed events. */
export interface Gap {
  requestedAfter: number;
  oldestAvailable: number;
}

export interface EventBusOptions {
  /** How many events the persisted log keeps; older ones are pruned (replay past that gets a resync). */
  retention: number;
}

const REPLAY_PAGE = 500;

/**
 * Persist-then-fan-out. Delivery to subscribers is synchronous and must not block: each transport keeps
 * its own bounded buffer and drops a consumer that falls behind, so one slow reader never slows the rest.
 */
export class EventBus implements EventSink {
  private readonly subs = new Set<{ filter: EventFilter; deliver: Deliver }>();
  private readonly persistHooks: ((e: GroveEvent) => void)[] = [];
  private appendsSincePrune = 0;

  constructor(private readonly repo: EventRepo, private readonly opts: EventBusOptions, private readonly transact: Transact = (fn) => fn()) {}

  /**
   * Runs inside the transaction that stores each event (a webhook outbox writes its deliveries here), so
   * an event and what must follow from it are committed together or not at all.
   */
  onPersist(hook: (e: GroveEvent) => void): void {
    this.persistHooks.push(hook);
  }

  publish(e: NewEvent): GroveEvent {
    const stored = this.transact(() => {
      const ev = this.repo.append(e);
      for (const h of this.persistHooks) h(ev);
      return ev;
    });
    if (++this.appendsSincePrune >= Math.max(100, Math.floor(this.opts.retention / 10))) {
      this.appendsSincePrune = 0;
      this.repo.prune(this.opts.retention);
    }
    for (const s of [...this.subs]) {
      if (matchesFilter(stored, s.filter)) s.deliver(stored);
    }
    return stored;
  }

  /** How many events the log holds now (ids are contiguous: pruning removes the oldest). */
  retained(): number {
    const oldest = this.repo.oldestId();
    return oldest === undefined ? 0 : this.repo.latestId() - oldest + 1;
  }

  latestId(): number {
    return this.repo.latestId();
  }

  /**
   * Replays persisted events after `afterId` (when given), then streams live ones, with no gap and no
   * duplicate: publish() and this method both run on the one JS thread, so nothing can be appended between
   * the replay read and the registration below.
   */
  subscribe(filter: EventFilter, deliver: Deliver, afterId?: number): Subscription {
    if (afterId !== undefined) {
      let cursor = afterId;
      for (;;) {
        const page = this.repo.since(cursor, REPLAY_PAGE);
        for (const e of page) if (matchesFilter(e, filter)) deliver(e);
        if (page.length < REPLAY_PAGE) break;
        cursor = page[page.length - 1]!.id;
      }
    }
    const sub = { filter, deliver };
    this.subs.add(sub);
    return { close: () => { this.subs.delete(sub); } };
  }

  gapBefore(afterId: number): Gap | null {
    const oldest = this.repo.oldestId();
    if (oldest === undefined || afterId >= this.repo.latestId()) return null;
    return afterId < oldest - 1 ? { requestedAfter: afterId, oldestAvailable: oldest } : null;
  }
}
