import type { EventFilter, GroveEvent, NewEvent } from '../domain/events.js';

export interface EventSink {
  publish(e: NewEvent): GroveEvent;
}

/** Where services that react to events (rather than cause them) subscribe. */
export interface EventFeed {
  subscribe(filter: EventFilter, deliver: (e: GroveEvent) => void): { close(): void };
}
