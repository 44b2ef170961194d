import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { WebSocket } from 'ws';
import { responses } from '../schemas/common.js';
import { EventsQuery } from '../schemas/events.js';
import type { ApiServices } from '../rest/context.js';
import { toProblem } from '../rest/problem.js';
import { attachStream, parseFilter } from './event-stream.js';
import type { StreamClients } from './stream-clients.js';

const HEARTBEAT_MS = 15_000;
type Q = { Querystring: Static<typeof EventsQuery> };

export async function eventRoutes(app: FastifyInstance, { services: s, streams }: { services: ApiServices; streams: StreamClients }): Promise<void> {
  const filterOf = (req: FastifyRequest<Q>) => {
    const vm = req.query.vm !== undefined ? s.vms.get(req.query.vm).id : undefined;
    return parseFilter(req.query.types, vm);
  };

  app.route<Q>({
    method: 'GET',
    url: '/events',
    config: { originCheck: true },
    schema: {
      tags: ['Events'], summary: 'Live events (SSE or WebSocket)', operationId: 'events',
      description: [
        'Server-Sent Events with `Accept: text/event-stream`: `id:`/`event:`/`data:` records, a `: heartbeat` comment every 15 s,',
        'replay after the `Last-Event-ID` header (or `?since=`). If the requested id is older than the retained log, an `event: resync`',
        'record comes first. A consumer that falls more than 8 MiB behind gets `event: overflow` and is disconnected.',
        'A WebSocket upgrade on the same path sends one JSON envelope per message (`?since=` replays; a resync notice is',
        '`{"type":"resync",...}`); slow consumers are closed with code 4008.',
      ].join(' '),
      querystring: EventsQuery,
      response: responses({ 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } as never }, [404]),
    },
    handler: async (req, reply) => {
      const filter = filterOf(req);
      const header = req.headers['last-event-id'];
      const lastId = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : req.query.since;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 2000\n: connected, latest event id ${s.events.latestId()}\n\n`);
      const write = (chunk: string): void => { if (!res.destroyed) res.write(chunk); };
      const detach = attachStream(s.events, filter, lastId, {
        buffered: () => res.writableLength,
        send: (e) => write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`),
        resync: (gap) => write(`event: resync\ndata: ${JSON.stringify({ reason: 'requested id is older than the retained event log', ...gap })}\n\n`),
        overflow: (reason) => {
          write(`event: overflow\ndata: ${JSON.stringify({ reason })}\n\n`);
          res.end();
          setTimeout(() => res.destroy(), 2000).unref();
        },
      });
      const heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
      const counted = streams.attach('sse');
      res.on('close', () => { clearInterval(heartbeat); detach(); counted(); });
    },
    wsHandler: (socket: WebSocket, req) => {
      let filter;
      try {
        filter = filterOf(req as FastifyRequest<Q>);
      } catch (e) {
        const p = toProblem(e, req);
        socket.close(4000 + p.status, p.detail.slice(0, 120));
        return;
      }
      const since = (req.query as Static<typeof EventsQuery>).since;
      const detach = attachStream(s.events, filter, since, {
        buffered: () => socket.bufferedAmount,
        send: (e) => socket.send(JSON.stringify(e)),
        resync: (gap) => socket.send(JSON.stringify({ type: 'resync', reason: 'requested id is older than the retained event log', ...gap })),
        overflow: (reason) => {
          socket.close(4008, reason.slice(0, 120));
          setTimeout(() => socket.terminate(), 2000).unref();
        },
      });
      const counted = streams.attach('websocket');
      socket.on('close', () => { detach(); counted(); });
    },
  });
}
