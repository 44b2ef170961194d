import { Type } from '@sinclair/typebox';
import { EVENT_TYPES } from '../../domain/events.js';

export const EventEnvelope = Type.Object({
  id: Type.Integer({ description: 'Monotonic per daemon, persisted' }),
  type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
  timestamp: Type.String({ format: 'date-time' }),
  vmId: Type.Optional(Type.String()),
  vmName: Type.Optional(Type.String()),
  data: Type.Object({}, { additionalProperties: true }),
}, { $id: 'Event' });

export const EventsQuery = Type.Object({
  types: Type.Optional(Type.String({ maxLength: 2048, description: 'Comma-separated types or prefix wildcards, e.g. `vm.*,snapshot.created`' })),
  vm: Type.Optional(Type.String({ maxLength: 128, description: 'Only events of this VM (id or name)' })),
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Replay events after this id (WebSocket; SSE also honours Last-Event-ID)' })),
}, { additionalProperties: false });
