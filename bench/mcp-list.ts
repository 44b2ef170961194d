import { alternatingRounds, cpuFigures, createBenchVms, fmtLoad as fmt, medianLoad, pairedRatios, rpsList } from './lib/ab.js';
import { startBenchDaemon } from './lib/daemon.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { resultLine, type BenchResult } from './lib/stats.js';

export interface McpListOptions {
  vms: number;
  connections: number;
  durationS: number;
  warmupS: number;
  /** A/B rounds: each round measures MCP, then REST (order flipped every round). */
  rounds: number;
}

export const MCP_LIST_DEFAULTS: McpListOptions = { vms: 100, connections: 10, durationS: 5, warmupS: 2, rounds: 5 };

type Target = 'mcp' | 'rest';

/**
 * (e) `tools/call list_vms` over `/mcp` against `GET /api/v1/vms`, same daemon, same 100 VMs, same client:
 * autocannon in its own process, keep-alive connections. The MCP request is what a plain JSON-RPC client
 * sends (one POST, `Content-Type: application/json`, no session); its answer carries the list twice
 * (structuredContent and the same JSON as text), as MCP asks of a tool with an output schema.
 */
export async function benchMcpList(o: McpListOptions = MCP_LIST_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('mcp');
  try {
    await createBenchVms(bd, o.vms);
    const auth = { authorization: `Bearer ${bd.token}` };
    const base = bd.api.replace(/\/api\/v1$/, '');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_vms', arguments: {} } });
    const mcpHeaders = { ...auth, 'content-type': 'application/json', accept: 'application/json' };

    // Both must answer with the same VMs, or the comparison means nothing.
    const rest = await (await fetch(`${bd.api}/vms`, { headers: auth })).text();
    const mcpRes = await fetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders, body });
    const mcpText = await mcpRes.text();
    const parsed = JSON.parse(mcpText) as { result?: { isError?: boolean; structuredContent?: { vms: unknown[] } } };
    if (mcpRes.status !== 200 || parsed.result?.isError || JSON.stringify(parsed.result?.structuredContent?.vms) !== rest) {
      throw new Error(`tools/call list_vms does not return the REST list: HTTP ${mcpRes.status} ${mcpText.slice(0, 300)}`);
    }

    const cpuUs: Record<Target, number[]> = { mcp: [], rest: [] };
    // The daemon runs in this process and the load in another, so this process's CPU time is the daemon's:
    // a per-request cost that other work on the machine disturbs less than req/s.
    const load = async (t: Target, durationS: number): Promise<LoadResult> => {
      const before = process.cpuUsage();
      const r = await (t === 'rest'
        ? runLoad({ url: `${bd.api}/vms`, connections: o.connections, durationS, headers: auth })
        : runLoad({ url: `${base}/mcp`, connections: o.connections, durationS, headers: mcpHeaders, method: 'POST', body }));
      const used = process.cpuUsage(before);
      cpuUs[t].push((used.user + used.system) / r.requests);
      return r;
    };
    for (const t of ['mcp', 'rest'] as const) await load(t, o.warmupS);
    cpuUs.mcp = [];
    cpuUs.rest = [];

    const runs = await alternatingRounds<Target>(['mcp', 'rest'], o.rounds, (t) => load(t, o.durationS));

    // For attribution: a small answer (one VM), where the payload no longer dominates: MCP's own per-call cost.
    const oneBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_vm', arguments: { vm: 'bench-000' } } });
    const oneRest = await runLoad({ url: `${bd.api}/vms/bench-000`, connections: o.connections, durationS: o.durationS, headers: auth });
    const oneMcp = await runLoad({ url: `${base}/mcp`, connections: o.connections, durationS: o.durationS, headers: mcpHeaders, method: 'POST', body: oneBody });

    const m = medianLoad(runs.mcp);
    const r = medianLoad(runs.rest);
    // Time per request, MCP over REST: REST req/s ÷ MCP req/s.
    const res = resultLine('mcp-list', `MCP ${fmt(m)}`, `REST ${fmt(r)}`, r.rps / m.rps, { op: '<=', value: 1.3 });
    res.details.push(
      `  ${o.vms} VMs; REST body ${Buffer.byteLength(rest)} bytes, MCP body ${Buffer.byteLength(mcpText)} bytes; ${o.connections} connections, ${o.durationS}s x ${o.rounds} runs each (alternating, after ${o.warmupS}s warm-up), medians shown`,
      `  MCP req/s per run: ${rpsList(runs.mcp)}; REST: ${rpsList(runs.rest)}; ratio per round: ${pairedRatios(runs)}`,
      `  ${cpuFigures(cpuUs, runs)} (daemon: this process; client: the load generator's process)`,
      `  info: one VM (get_vm vs GET /api/v1/vms/:id, one run each): MCP ${fmt(oneMcp)}, REST ${fmt(oneRest)}, ratio ${(oneRest.rps / oneMcp.rps).toFixed(2)}`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
