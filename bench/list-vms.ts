import Fastify from 'fastify';
import { Vm as VmSchema, VmList } from '../src/api/schemas/vm.js';
import type { Vm } from '../src/domain/vm.js';
import { alternatingRounds, createBenchVms, fmtLoad as fmt, medianLoad, rpsList } from './lib/ab.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { fmtMs, resultLine, timed, type BenchResult } from './lib/stats.js';

export interface ListVmsOptions {
  vms: number;
  connections: number;
  durationS: number;
  warmupS: number;
  /** A/B rounds: each round measures grove, then the bare reference (order flipped every round). */
  rounds: number;
}

export const LIST_VMS_DEFAULTS: ListVmsOptions = { vms: 100, connections: 10, durationS: 5, warmupS: 2, rounds: 3 };

type Target = 'grove' | 'bare' | 'bare-plain';

/**
 * (a) GET /api/v1/vms with 100 VMs defined, against a bare Fastify route returning the same JSON from the
 * same process. The daemon runs in this process (startDaemon); the bare Fastify instance (default settings)
 * serves the list fetched once from the daemon, with the same response schema as the daemon's route (so
 * both serialize with fast-json-stringify). A third route, bare without a schema (JSON.stringify), is
 * measured once per round for information. Load comes from autocannon in a separate process.
 */
export async function benchListVms(o: ListVmsOptions = LIST_VMS_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('list');
  try {
    const createMs = await timed(() => createBenchVms(bd, o.vms));
    const list = (await bd.client.ok('GET', '/vms')) as Vm[];
    if (list.length !== o.vms) throw new Error(`expected ${o.vms} VMs, the daemon lists ${list.length}`);

    const bare = Fastify();
    bare.addSchema(VmSchema);
    bare.get('/api/v1/vms', { schema: { response: { 200: VmList } } }, async () => list);
    bare.get('/plain/vms', async () => list);
    await bare.listen({ host: '127.0.0.1', port: 0 });
    const closeBare = onCleanup('bare fastify', () => bare.close());
    const addr = bare.server.address();
    const bareBase = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

    const urls: Record<Target, string> = {
      grove: `${bd.api}/vms`,
      bare: `${bareBase}/api/v1/vms`,
      'bare-plain': `${bareBase}/plain/vms`,
    };
    // Same bytes on the wire from all three, or the comparison means nothing.
    const bodies = await Promise.all((Object.keys(urls) as Target[]).map(async (t) => {
      const r = await fetch(urls[t], { headers: { authorization: `Bearer ${bd.token}` } });
      if (r.status !== 200) throw new Error(`${t}: HTTP ${r.status}`);
      return r.text();
    }));
    if (bodies[0] !== bodies[1] || bodies[0] !== bodies[2]) throw new Error('grove and bare routes do not return the same JSON');
    const bytes = Buffer.byteLength(bodies[0]!);

    const headers = { authorization: `Bearer ${bd.token}` };
    const load = (t: Target, durationS: number): Promise<LoadResult> => runLoad({ url: urls[t], connections: o.connections, durationS, headers });
    for (const t of Object.keys(urls) as Target[]) await load(t, o.warmupS);

    const runs = await alternatingRounds<Target>(['grove', 'bare', 'bare-plain'], o.rounds, (t) => load(t, o.durationS));
    await closeBare();

    const g = medianLoad(runs.grove);
    const b = medianLoad(runs.bare);
    const p = medianLoad(runs['bare-plain']);
    const res = resultLine('list-vms', fmt(g), `bare ${fmt(b)}`, g.rps / b.rps, { op: '>=', value: 0.8 });
    res.details.push(
      `  ${o.vms} VMs (${bytes} bytes of JSON), ${o.connections} connections, ${o.durationS}s x ${o.rounds} runs each (alternating, after ${o.warmupS}s warm-up), medians shown`,
      `  grove req/s per run: ${rpsList(runs.grove)}; bare: ${rpsList(runs.bare)}`,
      `  info: bare route without a response schema (JSON.stringify): ${fmt(p)}; grove/that ${(g.rps / p.rps).toFixed(2)}`,
      `  info: creating the ${o.vms} VMs through the API took ${fmtMs(createMs)} (${fmtMs(createMs / o.vms)} each)`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
