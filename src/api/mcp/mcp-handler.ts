import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { ApiServices } from '../rest/context.js';
import { HttpExchangeTransport, parseMessages } from './http-exchange.js';
import { encodeWithKnownJson } from './known-json.js';
import { createMcpServer, McpTools, type ResponseChunks } from './server.js';
import { mcpTools } from './tools.js';

/**
 * The `/mcp` POST handler (see mcp-routes.ts). Its module, with the MCP SDK and zod it brings, is loaded
 * on the first MCP request, and the tool catalogue compiled then: most daemons never serve MCP.
 */
export function mcpHandler(services: ApiServices, log: FastifyBaseLogger): (req: FastifyRequest, reply: FastifyReply) => FastifyReply | Promise<FastifyReply> {
  const tools = new McpTools(mcpTools(services), (err, tool) => log.error({ err, tool }, 'MCP tool failed unexpectedly'));
  return async (req, reply) => {
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      return reply.code(400).send(rpcError(-32600, `unsupported MCP-Protocol-Version '${version}' (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`));
    }
    const direct = singleToolCall(req.body);
    if (direct && direct.progressToken !== undefined && String(req.headers.accept ?? '').includes('text/event-stream')) {
      // The client asked for progress and takes an SSE answer (Streamable HTTP): notifications/progress
      // while the tool runs, then the response, on this POST's own stream.
      const token = direct.progressToken;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
      const send = (m: object): void => { if (!res.destroyed) res.write(`event: message\ndata: ${JSON.stringify(m)}\n\n`); };
      const progress = (value: number, message: string): void => send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: value, message } });
      const chunks = await tools.respond(direct.id, direct.name, direct.args, { progress });
      if (!res.destroyed) res.end(`event: message\ndata: ${chunks.join('')}\n\n`);
      return reply;
    }
    if (direct) {
      // The hot path agents use. The SDK Server would validate the message with zod and dispatch it to
      // the very same catalogue call; on a per-request server that costs more than most tools do, so a
      // single, well-formed tools/call is answered here, with the bytes the SDK path would send.
      const chunks = tools.respond(direct.id, direct.name, direct.args);
      return sendJson(reply, chunks instanceof Promise ? await chunks : chunks);
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
  };
}

const ENVELOPE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);
const PARAMS_KEYS = new Set(['name', 'arguments', '_meta']);

/** A lone `tools/call` request whose shape is exactly what the SDK's CallToolRequestSchema accepts. */
function singleToolCall(body: unknown): { id: string | number; name: string; args: Record<string, unknown> | undefined; progressToken?: string | number } | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const m = body as Record<string, unknown>;
  if (m['jsonrpc'] !== '2.0' || m['method'] !== 'tools/call') return null;
  const id = m['id'];
  if (!((typeof id === 'string') || (typeof id === 'number' && Number.isInteger(id)))) return null;
  const params = m['params'];
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return null;
  const p = params as Record<string, unknown>;
  if (typeof p['name'] !== 'string') return null;
  const args = p['arguments'];
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) return null;
  for (const k in m) if (!ENVELOPE_KEYS.has(k)) return null;
  for (const k in p) if (!PARAMS_KEYS.has(k)) return null;
  const meta = p['_meta'];
  const token = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>)['progressToken'] : undefined;
  return { id, name: p['name'], args: args as Record<string, unknown> | undefined, ...(typeof token === 'string' || typeof token === 'number' ? { progressToken: token } : {}) };
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * A 200 JSON answer written as its pieces, with the headers reply.send would give it: the pieces leave in
 * one writev (corked), so a kept result's bytes are not copied into a fresh buffer per answer. No onSend
 * hook is registered in this app (onResponse ones still run: they follow the response's 'finish').
 */
function sendJson(reply: FastifyReply, chunks: ResponseChunks): FastifyReply {
  let length = 0;
  for (const c of chunks) length += typeof c === 'string' ? Buffer.byteLength(c) : c.length;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': length });
  res.cork();
  for (let i = 0; i < chunks.length - 1; i++) res.write(chunks[i]);
  res.end(chunks[chunks.length - 1]);
  res.uncork();
  return reply;
}

function rpcError(code: number, message: string): object {
  return { jsonrpc: '2.0', id: null, error: { code, message } };
}
