import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { ApiServices } from '../rest/context.js';
import { HttpExchangeTransport, parseMessages } from './http-exchange.js';
import { encodeWithKnownJson } from '../known-json.js';
import { createMcpServer, McpTools, type ResponseChunks } from './server.js';
import { mcpTools } from './tools.js';

/**
 * The `/mcp` POST handler (see mcp-routes.ts). Its module, with the MCP SDK and zod it brings, is loaded
 * on the first MCP request, and the tool catalogue compiled then: most daemons never serve MCP.
 */
export function mcpHandler(services: ApiServices, log: FastifyBaseLogger): (headers: IncomingHttpHeaders, body: unknown, res: ServerResponse) => void | Promise<void> {
  const tools = new McpTools(mcpTools(services), (err, tool) => log.error({ err, tool }, 'MCP tool failed unexpectedly'));
  /**
   * The client asked for progress and takes an SSE answer (Streamable HTTP): notifications/progress while
   * the tool runs, then the response, on this POST's own stream.
   */
  const withProgress = async (call: ToolCall, token: string | number, res: ServerResponse): Promise<void> => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    const send = (m: object): void => { if (!res.destroyed) res.write(`event: message\ndata: ${JSON.stringify(m)}\n\n`); };
    const progress = (value: number, message: string): void => send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: value, message } });
    const chunks = await tools.respond(call.id, call.name, call.args, { progress });
    if (!res.destroyed) res.end(`event: message\ndata: ${chunks.join('')}\n\n`);
  };
  /** Anything but a lone tools/call (initialize, tools/list, notifications, batches): through the SDK's Server. */
  const viaServer = async (body: unknown, res: ServerResponse): Promise<void> => {
    const parsed = parseMessages(body);
    if (!parsed.ok) {
      sendJson(res, 400, [JSON.stringify(rpcError(-32600, `invalid request: ${parsed.error}`))]);
      return;
    }

    // A fresh Server per POST, as the SDK's stateless mode has it: JSON-RPC ids belong to each client. Once
    // every request is answered it holds nothing (no timers, no handlers running), so it is dropped rather
    // than closed: close() would build a "connection closed" error and abort finished handlers every time.
    const server = createMcpServer(tools, services.version);
    const transport = new HttpExchangeTransport();
    await server.connect(transport);
    const responses = await transport.exchange(parsed.messages);
    if (responses.length === 0) {
      res.writeHead(202, { 'content-length': 0 });
      res.end();
      return;
    }
    sendJson(res, 200, [encodeWithKnownJson(parsed.batch ? responses : responses[0])]);
  };
  return (headers, body, res) => {
    const version = headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      sendJson(res, 400, [JSON.stringify(rpcError(-32600, `unsupported MCP-Protocol-Version '${version}' (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`))]);
      return;
    }
    const direct = singleToolCall(body);
    if (direct === null) return viaServer(body, res);
    if (direct.progressToken !== undefined && String(headers.accept ?? '').includes('text/event-stream')) {
      return withProgress(direct, direct.progressToken, res);
    }
    // The hot path agents use. The SDK Server would validate the message with zod and dispatch it to the
    // very same catalogue call; on a per-request server that costs more than most tools do, so a single,
    // well-formed tools/call is answered here, with the bytes the SDK path would send, and without a
    // promise when the tool is synchronous (reading state is).
    const chunks = tools.respond(direct.id, direct.name, direct.args);
    if (chunks instanceof Promise) return chunks.then((c) => sendJson(res, 200, c));
    sendJson(res, 200, chunks);
  };
}

const ENVELOPE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);
const PARAMS_KEYS = new Set(['name', 'arguments', '_meta']);

interface ToolCall { id: string | number; name: string; args: Record<string, unknown> | undefined; progressToken?: string | number }

/** A lone `tools/call` request whose shape is exactly what the SDK's CallToolRequestSchema accepts. */
function singleToolCall(body: unknown): ToolCall | null {
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
 * A JSON answer written as its pieces: they leave in one writev (corked), so a kept result's bytes are
 * not copied into a fresh buffer per answer.
 */
function sendJson(res: ServerResponse, status: number, chunks: ResponseChunks): void {
  let length = 0;
  for (const c of chunks) length += typeof c === 'string' ? Buffer.byteLength(c) : c.length;
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': length });
  res.cork();
  for (let i = 0; i < chunks.length - 1; i++) res.write(chunks[i]);
  res.end(chunks[chunks.length - 1]);
  res.uncork();
}

function rpcError(code: number, message: string): object {
  return { jsonrpc: '2.0', id: null, error: { code, message } };
}
