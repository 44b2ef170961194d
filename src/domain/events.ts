export const EVENT_TYPES = [
  'vm.created', 'vm.updated', 'vm.deleted', 'vm.started', 'vm.stopped', 'vm.paused', 'vm.resumed',
  'vm.suspended', 'vm.error',
  'snapshot.created', 'snapshot.restored', 'snapshot.deleted',
  'console.output',
  'download.started', 'download.progress', 'download.completed', 'download.failed',
  'agent.connected', 'agent.disconnected',
  'webhook.test',
  'job.started', 'job.output', 'job.exited',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** The envelope every consumer sees: SSE, WebSocket, webhooks, the persisted log. */
export interface GroveEvent {
  id: number;
  type: EventType;
  timestamp: string;
  vmId?: string;
  vmName?: string;
  data: Record<string, unknown>;
}

export type NewEvent = Omit<GroveEvent, 'id' | 'timestamp'>;

/**
 * A filter as given by callers: exact types or `prefix.*`, and a VM id. An empty type list matches all.
 */
export interface EventFilter {
  types: string[];
  vmId?: string;
}

export function isValidTypePattern(p: string): boolean {
  if (p === '*') return true;
  if (p.endsWith('.*')) {
    const prefix = p.slice(0, -1);
    return EVENT_TYPES.some((t) => t.startsWith(prefix));
  }
  return (EVENT_TYPES as readonly string[]).includes(p);
}

export function matchesFilter(e: Pick<GroveEvent, 'type' | 'vmId'>, f: EventFilter): boolean {
  if (f.vmId !== undefined && e.vmId !== f.vmId) return false;
  if (f.types.length === 0) return true;
  return f.types.some((p) => p === '*' || p === e.type || (p.endsWith('.*') && e.type.startsWith(p.slice(0, -1))));
}
