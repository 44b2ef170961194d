import { ApiError } from '../../client/index.js';
import { EXIT, type Command } from '../command.js';

export const mcp: Command = {
  name: 'mcp', synopsis: ['mcp [--remote NAME]'], summary: 'MCP server on stdin/stdout, forwarding to the daemon\'s /mcp',
  help: `For MCP hosts that launch a command (Claude Desktop, IDEs): speaks MCP over stdio and forwards every
tool call to the daemon. Uses the same connection settings as the other commands (GROVE_URL/GROVE_TOKEN,
NEMETON_PORT/NEMETON_TOKEN, or the local daemon's data dir); --remote NAME bridges to a remote of
'grove remote ls' instead (its URL and token file). Only protocol goes to stdout.`,
  args: [0, 0],
  async run(ctx) {
    if (!ctx.client.token) throw new ApiError(401, 'UNAUTHORIZED', `no API token found (looked in ${ctx.conn.tokenSource})`);
    // Fail fast with the usual exit codes (3: no daemon, 1: wrong token) before the MCP host sees anything.
    await ctx.client.listVms();
    const { runStdioBridge } = await import('../../client/mcp-stdio-bridge.js');
    await runStdioBridge({ url: ctx.client.url, token: ctx.client.token });
    return EXIT.OK;
  },
};
