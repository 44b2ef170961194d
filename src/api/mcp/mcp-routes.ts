import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../rest/context.js';
import { readJsonBodies } from './json-body.js';

type Handler = ReturnType<typeof import('./mcp-handler.js').mcpHandler>;

/**
 * `/mcp`: MCP over Streamable HTTP, stateless (the tools keep no per-client state, so there is no session
 * to create, lose or clean up), every POST answered with one JSON body. That suits SDK clients (they
 * accept JSON or SSE) and plain JSON-RPC POSTs from curl or simple bridges (which accept only JSON) alike.
 * Auth and the Host/Origin checks are the app's own hooks (`originCheck`); GET (a server-initiated SSE
 * stream) and DELETE (ending a session) have nothing to serve here and get 405 from the app.
 */
export async function mcpRoutes(app: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  readJsonBodies(app);
  // Loaded on the first request (the MCP SDK and zod are a tenth of an idle daemon's memory), then kept
  // and called directly: the hot path pays no extra await.
  let handler: Handler | null = null;
  let loading: Promise<Handler> | null = null;
  app.post('/mcp', {
    config: { originCheck: true },
    schema: { hide: true },
  }, (req, reply) => {
    if (handler) return handler(req, reply);
    loading ??= import('./mcp-handler.js').then((m) => (handler = m.mcpHandler(services, app.log)));
    return loading.then((h) => h(req, reply));
  });
}
