import { alternatingRounds, cpuFigures, createBenchVms, fmtLoad as fmt, medianLoad, pairedRatios } from './lib/ab.js';
import { startBenchDaemon } from './lib/daemon.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { resultLine, type BenchResult } from './lib/stats.js';

export interface McpVsRestOptions {
  vms: number;
  connections: number;
  durationS: number;
  warmupS: number;
  /** A/B rounds per tool: MCP, then REST (order flipped every round). */
  rounds: number;
}

export const MCP_VS_REST_DEFAULTS: McpVsRestOptions = { vms: 20, connections: 10, durationS: 3, warmupS: 5, rounds: 7 };

/** `volatile`: figures that change between two calls (free memory, uptime): the same fields are enough. */
interface Pair { tool: string; args: Record<string, unknown>; rest: string; volatile?: boolean }

/** Five common calls an agent makes, each with the REST request that returns the same thing. */
const PAIRS: Pair[] = [
  { tool: 'list_vms', args: {}, rest: '/vms' },
  { tool: 'get_vm', args: { vm: 'bench-000' }, rest: '/vms/bench-000' },
  { tool: 'get_host_info', args: {}, rest: '/host', volatile: true },
  { tool: 'list_snapshots', args: { vm: 'bench-000' }, rest: '/vms/bench-000/snapshots' },
  { tool: 'vm_errors', args: { vm: 'bench-000' }, rest: '/vms/bench-000/errors' },
];

type Target = 'mcp' | 'rest';

/**
 * (mcp5) Five MCP tool calls against their REST twins, same daemon, same client (autocannon in its own
 * process, keep-alive), alternating rounds: one line per tool, the worst ratio is the figure. The MCP
 * request is a plain JSON-RPC POST (Content-Type: application/json, no session), as bridges send it.
 */
export async function benchMcpVsRest(o: McpVsRestOptions = MCP_VS_REST_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('mcp5');
  try {
    await createBenchVms(bd, o.vms);
    const auth = { authorization: `Bearer ${bd.token}` };
    const mcpUrl = `${bd.api.replace(/\/api\/v1$/, '')}/mcp`;
    const mcpHeaders = { ...auth, 'content-type': 'application/json', accept: 'application/json' };
    const lines: string[] = [];
    let worst = 0;
    let worstTool = '';
    const bodies = new Map(PAIRS.map((p) => [p, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: p.tool, arguments: p.args } })]));
    for (const p of PAIRS) {
      // Both must succeed with the same content, or the comparison means nothing.
      const rest = await fetch(`${bd.api}${p.rest}`, { headers: auth });
      const restBody = await rest.json() as unknown;
      const mcp = await fetch(mcpUrl, { method: 'POST', headers: mcpHeaders, body: bodies.get(p)! });
      const mcpBody = await mcp.json() as { result?: { isError?: boolean; structuredContent?: Record<string, unknown> } };
      const structured = mcpBody.result?.structuredContent;
      const keys = (v: unknown): string => JSON.stringify(Object.keys(v as object).sort());
      const same = structured !== undefined && (JSON.stringify(structured) === JSON.stringify(restBody) || (p.volatile === true && keys(structured) === keys(restBody))
        || Object.values(structured).some((v) => JSON.stringify(v) === JSON.stringify(restBody)));
      if (rest.status !== 200 || mcp.status !== 200 || mcpBody.result?.isError || !same) {
        throw new Error(`${p.tool} and GET ${p.rest} do not agree: ${rest.status} / ${mcp.status} ${JSON.stringify(mcpBody).slice(0, 200)}`);
      }
    }
    const cpuUs: Record<Target, number[]> = { mcp: [], rest: [] };
    const load = async (p: Pair, t: Target, durationS: number): Promise<LoadResult> => {
      const before = process.cpuUsage();
      const r = await (t === 'rest'
        ? runLoad({ url: `${bd.api}${p.rest}`, connections: o.connections, durationS, headers: auth })
        : runLoad({ url: mcpUrl, connections: o.connections, durationS, headers: mcpHeaders, method: 'POST', body: bodies.get(p)! }));
      const used = process.cpuUsage(before);
      cpuUs[t].push((used.user + used.system) / r.requests);
      return r;
    };
    // Every path of both faces runs hot before anything is measured: otherwise the first tool measured
    // pays for the daemon's own warm-up (JIT, heap sizing), on whichever side happens to go first.
    for (const p of PAIRS) for (const t of ['mcp', 'rest'] as const) await load(p, t, o.warmupS);
    for (const p of PAIRS) {
      cpuUs.mcp = [];
      cpuUs.rest = [];
      const runs = await alternatingRounds<Target>(['mcp', 'rest'], o.rounds, (t) => load(p, t, o.durationS));
      const m = medianLoad(runs.mcp);
      const r = medianLoad(runs.rest);
      const ratio = r.rps / m.rps;
      if (ratio > worst) { worst = ratio; worstTool = p.tool; }
      const cpu = cpuFigures(cpuUs, runs);
      lines.push(`  ${p.tool.padEnd(15)} MCP ${fmt(m)} | REST GET ${p.rest} ${fmt(r)} | ratio ${ratio.toFixed(2)} (rounds ${pairedRatios(runs)}) | ${cpu}`);
    }
    const res = resultLine('mcp-vs-rest', `worst tool ${worstTool}`, 'its REST twin', worst, { op: '<=', value: 1.3 });
    res.details.push(
      `  ${o.vms} VMs; ${o.connections} connections; ${o.durationS}s x ${o.rounds} alternating runs per side, after a warm-up of ${o.warmupS}s per side of every pair; medians`,
      '  CPU per request: the daemon (this process) + the load generator (its own process); with both on the same cores, req/s follows their sum',
      ...lines,
    );
    return res;
  } finally {
    await bd.close();
  }
}
