import type { RegisterWebhook } from '../../client/index.js';
import { EXIT, str, type Command } from '../command.js';
import { json, table } from '../output.js';

export const webhookLs: Command = {
  name: 'webhook ls', synopsis: ['webhook ls'], summary: 'List webhooks', args: [0, 0],
  async run(ctx) {
    const hooks = await ctx.client.listWebhooks();
    ctx.out(ctx.json ? json(hooks) : table(
      ['ID', 'URL', 'EVENTS', 'SIGNED', 'ENABLED', 'DESCRIPTION'],
      hooks.map((h) => [h.id, h.url, h.events.length ? h.events.join(',') : '*', h.hasSecret ? 'yes' : 'no',
        h.enabled ? 'yes' : `no (${h.disabledReason ?? 'disabled'})`, h.description ?? '']),
    ));
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
  name: 'webhook rm', synopsis: ['webhook rm ID'], summary: 'Remove a webhook (and its pending deliveries)', args: [1, 1],
  async run(ctx, _v, [id]) {
    await ctx.client.deleteWebhook(id!);
    ctx.out(ctx.json ? json({ deleted: true, id }) : `Removed webhook ${id}.\n`);
    return EXIT.OK;
  },
};
