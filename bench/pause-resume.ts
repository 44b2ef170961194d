import { join } from 'node:path';
import { QmpClient } from '../src/hypervisor/qemu/qmp/index.js';
import type { Vm } from '../src/domain/vm.js';
import { READY_LINE } from '../test/helpers/guest.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { RawQmp } from './lib/raw-qmp.js';
import { launchRaw, prepareRaw, waitForConsoleText } from './lib/raw-qemu.js';
import { fmtMs, resultLine, summarize, timed, type BenchResult, type Summary } from './lib/stats.js';

export interface PauseResumeOptions {
  /** Measured round trips (pause + resume) per side. */
  rounds: number;
  warmup: number;
  /** Round trips per block; blocks of each side alternate. */
  block: number;
}

export const PAUSE_RESUME_DEFAULTS: PauseResumeOptions = { rounds: 200, warmup: 20, block: 20 };

type Side = 'grove' | 'raw' | 'qmpclient' | 'service' | 'http';

/**
 * (b) pause + resume round trip through the REST API (POST /vms/:id/pause then /resume, one keep-alive
 * connection, client in this process), against `stop` + `cont` sent straight to a QEMU launched by hand
 * with the daemon's exact argv. Both guests are booted to the ready line first. For attribution three
 * more figures are taken: the same two commands through Grove's own QmpClient (on a second monitor of the
 * hand-launched QEMU), VmService.pause()/resume() called in-process (everything but HTTP), and two bare
 * HTTP round trips (GET /api/v1/health) to the daemon.
 */
export async function benchPauseResume(o: PauseResumeOptions = PAUSE_RESUME_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('pr');
  try {
    const vm = (await bd.createGuestVm('bench-pr')) as Vm;
    const raw = await prepareRaw(vm, join(bd.dataDir, 'vms', vm.id, 'disk.qcow2'), { qemuBinary: bd.cfg.qemuBinary, extraQmp: true });
    // Both boot at once (not measured): the daemon's through the API, the raw one by hand.
    const [started, rawVm] = await Promise.all([
      bd.startReady(vm.id),
      launchRaw(raw).then(async (r) => { await waitForConsoleText(r.spec.paths.consoleOut, READY_LINE, { timeoutMs: 90_000 }); return r; }),
    ]);
    if (started.vm.state !== 'running') throw new Error(`daemon VM is ${started.vm.state} after start`);
    const rawQmp = await RawQmp.connect(rawVm.spec.paths.qmpSocket);
    const groveQmp = await QmpClient.connect(rawVm.extraQmp!);
    const closeClients = onCleanup('QMP clients', async () => { rawQmp.close(); await groveQmp.close(); });

    const once: Record<Side, () => Promise<unknown>> = {
      grove: async () => {
        const p = await bd.client.ok('POST', `/vms/${vm.id}/pause`);
        const r = await bd.client.ok('POST', `/vms/${vm.id}/resume`);
        if (p.state !== 'paused' || r.state !== 'running') throw new Error(`unexpected states ${p.state} / ${r.state}`);
      },
      raw: async () => { await rawQmp.execute('stop'); await rawQmp.execute('cont'); },
      qmpclient: async () => { await groveQmp.execute('stop'); await groveQmp.execute('cont'); },
      service: async () => { await bd.daemon.vms.pause(vm.id); await bd.daemon.vms.resume(vm.id); },
      http: async () => { await bd.client.ok('GET', '/health'); await bd.client.ok('GET', '/health'); },
    };
    const sides = Object.keys(once) as Side[];
    const samples: Record<Side, number[]> = { grove: [], raw: [], qmpclient: [], service: [], http: [] };
    for (const s of sides) for (let i = 0; i < o.warmup; i++) await once[s]();
    for (let done = 0; done < o.rounds; done += o.block) {
      const n = Math.min(o.block, o.rounds - done);
      const order = (done / o.block) % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) for (let i = 0; i < n; i++) samples[s].push(await timed(once[s]));
    }
    await closeClients();
    await rawVm.dispose();

    const sum: Record<Side, Summary> = {
      grove: summarize(samples.grove), raw: summarize(samples.raw), qmpclient: summarize(samples.qmpclient),
      service: summarize(samples.service), http: summarize(samples.http),
    };
    const fmt = (x: Summary) => `mean ${fmtMs(x.mean)} p50 ${fmtMs(x.p50)} p99 ${fmtMs(x.p99)}`;
    const res = resultLine('pause-resume', fmt(sum.grove), `raw QMP ${fmt(sum.raw)}`, sum.grove.p50 / sum.raw.p50, { op: '<=', value: 1.5 });
    res.details.push(
      `  ${o.rounds} round trips (pause+resume) per side, blocks of ${o.block} alternating, after ${o.warmup} warm-up; ratio of medians`,
      `  info: stop+cont through Grove's QmpClient: ${fmt(sum.qmpclient)}`,
      `  info: VmService.pause()+resume() called in-process (no HTTP; on the daemon's QEMU): ${fmt(sum.service)}`,
      `  info: two bare HTTP round trips (GET /api/v1/health, no auth, tiny body): ${fmt(sum.http)}`,
      `  info: p50 split of grove - raw = ${fmtMs(sum.grove.p50 - sum.raw.p50)}: QmpClient over raw ${fmtMs(sum.qmpclient.p50 - sum.raw.p50)}, `
        + `service (locks, sqlite, events) ${fmtMs(sum.service.p50 - sum.qmpclient.p50)}, HTTP + routes ${fmtMs(sum.grove.p50 - sum.service.p50)}`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
