import { errorMessage } from '../util/errors.js';
import { fetchWithoutTimeouts } from './http.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema, CallToolResultSchema, ListToolsRequestSchema, ListToolsResultSchema, McpError,
} from '@modelcontextprotocol/sdk/types.js';

/**
 * One forwarded call may take as long as the longest wait a tool accepts (3600 s) and a margin; the SDK's
 * own 60 s default would cut off tools that wait on the guest (waitFor, console_execute, exec). The HTTP
 * side has no limit of its own: the transport uses node:http, not fetch with its 300 s headers timeout.
 */
const FORWARD_TIMEOUT_MS = 3_630_000;

export interface StdioBridgeOptions {
  /** The daemon's base URL, e.g. http://127.0.0.1:22100 (the bridge talks to `<url>/mcp`). */
  url: string;
  token: string;
}

/**
 * `grove mcp`: an MCP server on stdin/stdout for hosts that launch a command, forwarding tools/list and
 * tools/call to the daemon's `/mcp`. It adds nothing of its own — the daemon is the one place the tools
 * live — so its tool list, results and errors are exactly the daemon's. Resolves when stdin closes.
 * Nothing but protocol goes to stdout.
 */
export async function runStdioBridge(opts: StdioBridgeOptions): Promise<void> {
  const endpoint = new URL(`${opts.url.replace(/\/+$/, '')}/mcp`);
  const client = new Client({ name: 'grove-mcp-bridge', version: '1' });
  const upstream = new StreamableHTTPClientTransport(endpoint, {
    requestInit: { headers: { authorization: `Bearer ${opts.token}` } }, fetch: fetchWithoutTimeouts,
  });
  try {
    await client.connect(upstream);
  } catch (e) {
    throw new Error(`cannot reach the Grove daemon at ${endpoint.href}: ${errorMessage(e)}`);
  }

  const remote = client.getServerVersion();
  const instructions = client.getInstructions();
  // The daemon's own name and version: the bridge adds nothing of its own, not even an identity.
  const server = new Server(
    { name: remote?.name ?? 'grove', ...(remote?.title !== undefined ? { title: remote.title } : {}), version: remote?.version ?? 'unknown' },
    { capabilities: { tools: {} }, ...(instructions ? { instructions } : {}) },
  );
  const forward = (method: 'tools/list' | 'tools/call', params: unknown, signal: AbortSignal) =>
    client.request({ method, params } as never, method === 'tools/list' ? ListToolsResultSchema : CallToolResultSchema, { signal, timeout: FORWARD_TIMEOUT_MS })
      .catch((e: unknown) => { throw unprefixed(e); });
  server.setRequestHandler(ListToolsRequestSchema, (req, extra) => forward('tools/list', req.params, extra.signal) as never);
  server.setRequestHandler(CallToolRequestSchema, (req, extra) => forward('tools/call', req.params, extra.signal) as never);

  const stdin = process.stdin;
  const closed = new Promise<void>((resolve, reject) => {
    server.onclose = () => resolve();
    // A close that fails ends the bridge with its error rather than leaving it waiting for onclose.
    stdin.once('end', () => { server.close().catch(reject); });
  });
  await server.connect(new StdioServerTransport());
  await closed;
  await client.close().catch(() => undefined);
}

/**
 * The daemon's protocol errors (an unknown tool) are passed on with their code; McpError prefixes its
 * message with "MCP error <code>:", which the far side would add a second time.
 */
function unprefixed(e: unknown): unknown {
  if (!(e instanceof McpError)) return e;
  return new McpError(e.code, e.message.replace(/^MCP error -?\d+: /, ''), e.data);
}
