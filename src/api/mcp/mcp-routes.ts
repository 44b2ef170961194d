import type { FastifyInstance } from 'fastify';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { ApiServices } from '../rest/context.js';
import { HttpExchangeTransport, parseMessages } from './http-exchange.js';
import { encodeWithKnownJson } from './known-json.js';
import { createMcpServer, McpTools } from './server.js';
import { mcpTools } from './tools.js';

/**
 * `/mcp`: MCP over Streamable HTTP, stateless (the tools keep no per-client state, so there is no session
 * to create, lose or clean up), every POST answered with one JSON body. That suits SDK clients (they
 * accept JSON or SSE) and plain JSON-RPC POSTs from curl or simple bridges (which accept only JSON) alike.
 * Auth and the Host/Origin checks are the app's own hooks (`originCheck`); GET (a server-initiated SSE
 * stream) and DELETE (ending a session) have nothing to serve here and get 405 from the app.
 */
export async function mcpRoutes(app: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  const tools = new McpTools(mcpTools(services), (err, tool) => app.log.error({ err, tool }, 'MCP tool failed unexpectedly'));

  app.post('/mcp', {
    config: { originCheck: true },
    schema: { hide: true },
  }, async (req, reply) => {
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      return reply.code(400).send(rpcError(-32600, `unsupported MCP-Protocol-Version '${version}' (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`));
    }
    const parsed = parseMessages(req.body);
    if (!parsed.ok) return reply.code(400).send(rpcError(-32600, `invalid request: ${parsed.error}`));

    // A fresh Server per POST, as the SDK's stateless mode has it: JSON-RPC ids belong to each client. Once
    // every request is answered it holds nothing (no timers, no handlers running), so it is dropped rather
    // than closed: close() would build a "connection closed" error and abort finished handlers every time.
    const server = createMcpServer(tools, services.version);
    const transport = new HttpExchangeTransport();
    await server.connect(transport);
    const responses = await transport.exchange(parsed.messages);
    if (responses.length === 0) return reply.code(202).send();
    const payload = encodeWithKnownJson(parsed.batch ? responses : responses[0]);
    return reply.code(200).type('application/json; charset=utf-8').send(payload);
  });
}

function rpcError(code: number, message: string): object {
  return { jsonrpc: '2.0', id: null, error: { code, message } };
}
