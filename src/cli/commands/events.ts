import { followEvents, type GroveEvent } from '../../client/index.js';
import { EXIT, int, str, type Command } from '../command.js';

function line(e: GroveEvent): string {
  const data = Object.keys(e.data).length > 0 ? JSON.stringify(e.data) : '';
  const shown = data.length > 160 ? `${data.slice(0, 157)}...` : data;
  return [e.timestamp, `#${e.id}`, e.type, e.vmName ?? e.vmId ?? '-', shown].join('  ').trimEnd() + '\n';
}

export const events: Command = {
  name: 'events', synopsis: ['events [--types TYPE[,TYPE...]] [--vm VM] [--since ID]'],
  summary: 'Follow events, one line each (--json: one envelope per line); ctrl-c ends',
  help: `TYPE may be a prefix wildcard: --types 'vm.*,snapshot.created'. --since replays the persisted events
after that id first. A dropped stream (daemon restart) is resumed where it stopped.`,
  options: { types: { type: 'string' }, vm: { type: 'string' }, since: { type: 'string' } },
  args: [0, 0],
  async run(ctx, v) {
    const ac = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
    const stream = followEvents(ctx.client, {
      types: str(v, 'types'), vm: str(v, 'vm'), since: int(v, 'since', { min: 0 }), signal: ac.signal,
      onNotice: (kind, data) => ctx.err(`grove: ${kind}: ${JSON.stringify(data)}\n`),
    });
    for await (const e of stream) ctx.out(ctx.json ? JSON.stringify(e) + '\n' : line(e));
    return EXIT.OK;
  },
};
