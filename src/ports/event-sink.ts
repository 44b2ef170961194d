import type { GroveEvent, NewEvent } from '../domain/events.js';

export interface EventSink {
  publish(e: NewEvent): GroveEvent;
}
