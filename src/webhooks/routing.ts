import { matchesFilter, type GroveEvent } from '../domain/events.js';

export interface RoutableHook {
  id: string;
  events: readonly string[];
  enabled: boolean;
}

/**
 * Which hooks get a delivery of an event. A `webhook.test` event naming a hook (`data.webhookId`, as
 * `POST /webhooks/:id/test` publishes it) goes to that hook only, whatever its filter; every other event
 * goes to each enabled hook whose filter matches (an empty filter matches all).
 */
export function hooksFor<H extends RoutableHook>(e: Pick<GroveEvent, 'type' | 'vmId' | 'data'>, hooks: readonly H[]): H[] {
  const target = e.type === 'webhook.test' ? e.data['webhookId'] : undefined;
  if (typeof target === 'string') return hooks.filter((h) => h.enabled && h.id === target);
  return hooks.filter((h) => h.enabled && matchesFilter(e, { types: [...h.events] }));
}
