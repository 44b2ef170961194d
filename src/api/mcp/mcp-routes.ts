import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../rest/context.js';
import { runOnBare, type FastLanes, type LaneHandler } from '../rest/fast-lane.js';
import type { RouteSecurity } from '../rest/security.js';

type Exchange = ReturnType<typeof import('./mcp-handler.js').mcpHandler>;

/** Browsers' cross-site requests are refused: a page must not drive the daemon's tools. */
const MCP_SECURITY: RouteSecurity = { originCheck: true };

/**
 * `/mcp`: MCP over Streamable HTTP, stateless (the tools keep no per-client state, so there is no session
 * to create, lose or clean up), every POST answered with one JSON body. That suits SDK clients (they
 * accept JSON or SSE) and plain JSON-RPC POSTs from curl or simple bridges (which accept only JSON) alike.
 * A plain POST to /mcp takes the fast lane (fast-lane.ts); the Fastify route answers the rest (refusals,
 * odd bodies, a query string) through the same handler. GET (a server-initiated SSE stream) and DELETE
 * (ending a session) have nothing to serve here and get 405 from the app.
 */
export async function mcpRoutes(app: FastifyInstance, { services, lanes }: { services: ApiServices; lanes: FastLanes }): Promise<void> {
  // Loaded on the first request (the MCP SDK and zod are a tenth of an idle daemon's memory), then kept
  // and called directly: the hot path pays no extra await.
  let exchange: Exchange | null = null;
  let loading: Promise<Exchange> | null = null;
  const handle: LaneHandler = (req, res, body) => {
    if (exchange) return exchange(req.headers, body, res);
    loading ??= import('./mcp-handler.js').then((m) => (exchange = m.mcpHandler(services, app.log)));
    return loading.then((h) => h(req.headers, body, res));
  };
  lanes.post('/mcp', MCP_SECURITY, handle);
  app.post('/mcp', { config: MCP_SECURITY, schema: { hide: true } }, (req, reply) => {
    // The answer is written on the bare response, as on the lane (onResponse hooks still run on its 'finish').
    reply.hijack();
    runOnBare(handle, req.raw, reply.raw, req.body, (err) => req.log.error({ err }, 'unhandled error'));
  });
}
