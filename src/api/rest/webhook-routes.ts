import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Empty, responses } from '../schemas/common.js';
import {
  DeliveriesQuery, DeliveryList, RegisterWebhookBody, Webhook, WebhookList, WebhookParams, WebhookTestResult,
} from '../schemas/webhooks.js';
import type { ApiServices } from './context.js';

type Ref = { Params: Static<typeof WebhookParams> };
const tags = ['Webhooks'];

export async function webhookRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get('/webhooks', {
    schema: { tags, summary: 'List webhooks', operationId: 'listWebhooks', response: responses({ 200: WebhookList }, []) },
  }, async () => s.webhooks.list());

  app.post<{ Body: RegisterWebhookBody }>('/webhooks', {
    schema: {
      tags, summary: 'Register a webhook', operationId: 'registerWebhook',
      description: 'Every later event matching `events` is POSTed to `url` from a durable outbox, retried with exponential backoff for 24 h. The secret is write-only: responses carry `hasSecret`.',
      body: RegisterWebhookBody, response: responses({ 201: Webhook }, []),
    },
  }, async (req, reply) => {
    const h = s.webhooks.register(req.body);
    return reply.code(201).header('location', `/api/v1/webhooks/${h.id}`).send(h);
  });

  app.get<Ref>('/webhooks/:id', {
    schema: { tags, summary: 'Get a webhook', operationId: 'getWebhook', params: WebhookParams, response: responses({ 200: Webhook }, [404]) },
  }, async (req) => s.webhooks.get(req.params.id));

  app.delete<Ref>('/webhooks/:id', {
    schema: {
      tags, summary: 'Delete a webhook', operationId: 'deleteWebhook', description: 'Removes the hook and its pending deliveries; attempts in flight are aborted.',
      params: WebhookParams, response: responses({ 204: null }, [404]),
    },
  }, async (req, reply) => {
    s.webhooks.delete(req.params.id);
    return reply.code(204).send();
  });

  app.post<Ref & { Body: Static<typeof Empty> }>('/webhooks/:id/test', {
    schema: {
      tags, summary: 'Send a test delivery', operationId: 'testWebhook',
      description: 'Publishes a `webhook.test` event whose `data.webhookId` names this hook; it is delivered to this hook only (whatever its filter), asynchronously, like any other delivery. 409 when the hook is disabled.',
      params: WebhookParams, body: Empty, response: responses({ 202: WebhookTestResult }, [404, 409]),
    },
  }, async (req, reply) => reply.code(202).send(s.webhooks.test(req.params.id)));

  app.get<Ref & { Querystring: Static<typeof DeliveriesQuery> }>('/webhooks/:id/deliveries', {
    schema: {
      tags, summary: 'Recent deliveries', operationId: 'listWebhookDeliveries',
      description: 'Newest first: status, attempts, last HTTP status or error, next retry. Finished deliveries are kept 7 days.',
      params: WebhookParams, querystring: DeliveriesQuery, response: responses({ 200: DeliveryList }, [404]),
    },
  }, async (req) => ({ deliveries: s.webhooks.deliveries(req.params.id, req.query.limit ?? 50) }));
}
