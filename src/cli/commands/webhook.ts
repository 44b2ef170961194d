import type { RegisterWebhook, Webhook, WebhookDelivery } from '../../client/index.js';
import { EXIT, int, str, type Command } from '../command.js';
import type { Column } from '../format.js';
import { json } from '../output.js';

const WEBHOOK_COLUMNS: Column<Webhook>[] = [
  { name: 'id', value: (h) => h.id },
  { name: 'url', value: (h) => h.url },
  { name: 'events', value: (h) => (h.events.length ? h.events.join(',') : '*') },
  { name: 'signed', value: (h) => (h.hasSecret ? 'yes' : 'no') },
  { name: 'enabled', value: (h) => (h.enabled ? 'yes' : `no (${h.disabledReason ?? 'disabled'})`) },
  { name: 'description', value: (h) => h.description ?? '' },
];

export const webhookLs: Command = {
  name: 'webhook ls', aliases: ['list'], synopsis: ['webhook ls'], summary: 'List webhooks', args: [0, 0], listing: true,
  async run(ctx) {
    ctx.listing(await ctx.client.listWebhooks(), WEBHOOK_COLUMNS);
    return EXIT.OK;
  },
};

export const webhookAdd: Command = {
  name: 'webhook add', synopsis: ['webhook add URL [--events TYPE[,TYPE...]] [--secret SECRET] [--description TEXT]'],
  summary: 'Register a webhook (every matching event is POSTed to URL)',
  help: `--events takes exact types or prefixes ('vm.*,snapshot.created'); without it every event is sent.
With --secret every delivery is signed (X-Nemeton-Secret and Standard Webhooks headers); the secret is
never shown again.`,
  options: { events: { type: 'string' }, secret: { type: 'string' }, description: { type: 'string' } },
  args: [1, 1],
  async run(ctx, v, [url]) {
    const body: RegisterWebhook = { url: url! };
    const events = str(v, 'events');
    if (events !== undefined) body.events = events.split(',').map((e) => e.trim()).filter(Boolean);
    const secret = str(v, 'secret');
    if (secret !== undefined) body.secret = secret;
    const description = str(v, 'description');
    if (description !== undefined) body.description = description;
    const h = await ctx.client.registerWebhook(body);
    ctx.out(ctx.json ? json(h) : `Registered webhook ${h.id} → ${h.url}.\n`);
    return EXIT.OK;
  },
};

export const webhookRm: Command = {
  name: 'webhook rm', aliases: ['delete', 'remove'], synopsis: ['webhook rm ID'], summary: 'Remove a webhook (and its pending deliveries)', args: [1, 1],
  async run(ctx, _v, [id]) {
    await ctx.client.deleteWebhook(id!);
    ctx.out(ctx.json ? json({ deleted: true, id }) : `Removed webhook ${id}.\n`);
    return EXIT.OK;
  },
};

export const webhookTest: Command = {
  name: 'webhook test', synopsis: ['webhook test ID'], summary: 'Send a test delivery (a webhook.test event to this hook only)', args: [1, 1],
  async run(ctx, _v, [id]) {
    const r = await ctx.client.testWebhook(id!);
    ctx.out(ctx.json ? json(r) : `Queued test delivery ${r.deliveryId} (event ${r.eventId}); see grove webhook deliveries ${id}.\n`);
    return EXIT.OK;
  },
};

const DELIVERY_COLUMNS: Column<WebhookDelivery>[] = [
  { name: 'id', value: (d) => d.id },
  { name: 'event', value: (d) => `${d.eventType} #${d.eventId}` },
  { name: 'status', value: (d) => d.status },
  { name: 'attempts', value: (d) => String(d.attempts) },
  { name: 'http', value: (d) => (d.lastStatusCode === null ? '-' : String(d.lastStatusCode)) },
  { name: 'created', value: (d) => d.createdAt },
  { name: 'next', value: (d) => d.nextAttemptAt ?? '-' },
  { name: 'error', value: (d) => d.lastError ?? '' },
  { name: 'finished', value: (d) => d.finishedAt ?? '-', extra: true },
];

export const webhookDeliveries: Command = {
  name: 'webhook deliveries', synopsis: ['webhook deliveries ID [--limit N]'], summary: 'Recent deliveries of a webhook, newest first',
  options: { limit: { type: 'string' } }, args: [1, 1], listing: true,
  async run(ctx, v, [id]) {
    ctx.listing(await ctx.client.webhookDeliveries(id!, int(v, 'limit', { min: 1, max: 1000 })), DELIVERY_COLUMNS);
    return EXIT.OK;
  },
};
