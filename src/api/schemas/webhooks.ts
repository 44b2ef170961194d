import { Type, type Static } from '@sinclair/typebox';
import {
  WEBHOOK_DESCRIPTION_MAX, WEBHOOK_EVENTS_MAX, WEBHOOK_SECRET_MAX, WEBHOOK_SECRET_MIN, WEBHOOK_URL_MAX,
} from '../../domain/webhook.js';

const NullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description });

export const Webhook = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String({ description: 'Receiver URL (http or https); deliveries are POSTed here' }),
  events: Type.Array(Type.String(), { description: 'Exact types or `prefix.*`; empty = every event' }),
  description: NullableString('Free text'),
  hasSecret: Type.Boolean({ description: 'Whether deliveries are signed. The secret itself is never returned.' }),
  enabled: Type.Boolean({ description: 'False once the receiver answered 410 Gone; a disabled hook gets no deliveries' }),
  disabledReason: NullableString('Why the hook was disabled'),
  createdAt: Type.String({ format: 'date-time' }),
  disabledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const WebhookList = Type.Array(Webhook);

export const RegisterWebhookBody = Type.Object({
  url: Type.String({ minLength: 1, maxLength: WEBHOOK_URL_MAX, description: 'Absolute http(s) URL without credentials', examples: ['http://127.0.0.1:9000/grove'] }),
  events: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
    maxItems: WEBHOOK_EVENTS_MAX, description: 'Exact event types (`vm.started`) or prefixes (`vm.*`); absent or empty = every event', examples: [['vm.*', 'snapshot.created']],
  })),
  secret: Type.Optional(Type.String({
    minLength: WEBHOOK_SECRET_MIN, maxLength: WEBHOOK_SECRET_MAX,
    description: 'Signs every delivery (X-Nemeton-Secret and Standard Webhooks headers), used as raw bytes; printable ASCII, 16–256 characters. Write-only: never returned.',
  })),
  description: Type.Optional(Type.String({ maxLength: WEBHOOK_DESCRIPTION_MAX })),
}, { additionalProperties: false });
export type RegisterWebhookBody = Static<typeof RegisterWebhookBody>;

export const WebhookParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'Webhook id (UUID)' }),
}, { additionalProperties: false });

export const WebhookTestResult = Type.Object({
  webhookId: Type.String({ format: 'uuid' }),
  eventId: Type.Integer({ description: 'The `webhook.test` event published' }),
  deliveryId: Type.String({ format: 'uuid', description: 'Sent as X-Nemeton-Delivery / webhook-id; follow it in /deliveries' }),
});

export const DeliveryStatus = Type.Union(['pending', 'delivered', 'failed', 'cancelled'].map((s) => Type.Literal(s)), {
  description: 'pending: waiting for (or in) its next attempt; delivered: acknowledged with 2xx; failed: 410 Gone or retried for 24 h without success; cancelled: the hook was disabled first',
});

export const Delivery = Type.Object({
  id: Type.String({ format: 'uuid', description: 'Stable across attempts' }),
  eventId: Type.Integer(),
  eventType: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Integer({ description: 'Attempts made so far' }),
  lastStatusCode: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last attempt (null: no answer)' }),
  lastError: NullableString('What went wrong on the last attempt (network error, timeout, HTTP status)'),
  createdAt: Type.String({ format: 'date-time' }),
  lastAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the next attempt is due (pending only)' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const DeliveryList = Type.Object({ deliveries: Type.Array(Delivery) });

export const DeliveriesQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'Newest first' })),
}, { additionalProperties: false });
