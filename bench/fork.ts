import { startBenchDaemon } from './lib/daemon.js';
import { fmtMs, fmtRatio, median, nowMs, resultLine, type BenchResult, type Target } from './lib/stats.js';
import { READY_LINE } from '../test/helpers/guest.js';

export interface ForkOptions {
  /** Measured rounds per side, alternating (fork, cold, cold, fork, ...). */
  runs: number;
  /** Running copies per round. */
  copies: number;
}

export const FORK_DEFAULTS: ForkOptions = { runs: 2, copies: 4 };

const TARGET: Target = { op: '>=', value: 5 };
const AGENT_READY = { until: [{ agent: true }], timeoutSeconds: 300 };

/**
 * (k) N running copies of a booted guest, to the same ready point: its guest agent answers.
 *   grove: POST /vms/:id/fork { count: N } on a running test guest (256 MiB): one pause + state capture,
 *          N QEMUs resumed from it, each child's agent waited for and the child re-identified (hostname,
 *          machine-id, MAC, DHCP renew, entropy). Timed from the request to its answer.
 *   cold:  N VMs of the same definition started at once, each with POST /vms/:id/start and
 *          `waitFor: { until: [{ agent: true }] }`; timed from the first request to the last answer.
 * Ratio cold / fork of the medians (higher is better). RSS: the sum over the N QEMUs right after each
 * side reached the ready point (GET /vms/:id/runtime), medians.
 */
export async function benchFork(o: ForkOptions = FORK_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('fork');
  try {
    const parent = await bd.createGuestVm('bench-fork-parent');
    await bd.client.ok('POST', `/vms/${parent.id}/start`, { waitFor: { until: [{ console: READY_LINE }, { agent: true }], mode: 'all', timeoutSeconds: 300 } });
    const cold: { id: string }[] = [];
    for (let i = 0; i < o.copies; i++) cold.push(await bd.createGuestVm(`bench-cold-${i}`));
    const rss = async (ids: string[]): Promise<number> => {
      let sum = 0;
      for (const id of ids) sum += ((await bd.client.ok('GET', `/vms/${id}/runtime`)) as { rssBytes: number }).rssBytes;
      return sum;
    };
    const forkMs: number[] = [];
    const coldMs: number[] = [];
    const forkRss: number[] = [];
    const coldRss: number[] = [];
    const steps = { capture: [] as number[], start: [] as number[], reidentify: [] as number[] };
    let stateBytes = 0;

    const runFork = async (): Promise<void> => {
      const t0 = nowMs();
      const r = await bd.client.ok('POST', `/vms/${parent.id}/fork`, { count: o.copies, agentTimeoutSeconds: 300 }, 201, 600_000);
      forkMs.push(nowMs() - t0);
      const ids = (r.children as { vm: { id: string }; reidentifyError: string | null }[]).map((c) => {
        if (c.reidentifyError) throw new Error(`fork child not re-identified: ${c.reidentifyError}`);
        return c.vm.id;
      });
      forkRss.push(await rss(ids));
      steps.capture.push(r.durations.captureMs); steps.start.push(r.durations.startMs); steps.reidentify.push(r.durations.reidentifyMs);
      stateBytes = r.stateBytes;
      for (const id of ids) await bd.client.ok('DELETE', `/vms/${id}?force=true`, undefined, 204);
    };
    const runCold = async (): Promise<void> => {
      const t0 = nowMs();
      await Promise.all(cold.map((vm) => bd.client.ok('POST', `/vms/${vm.id}/start`, { waitFor: AGENT_READY }, 200, 600_000)));
      coldMs.push(nowMs() - t0);
      coldRss.push(await rss(cold.map((v) => v.id)));
      for (const vm of cold) await bd.client.ok('POST', `/vms/${vm.id}/force-stop`, {});
    };

    for (let i = 0; i < o.runs; i++) {
      if (i % 2 === 0) { await runFork(); await runCold(); } else { await runCold(); await runFork(); }
    }
    const f = median(forkMs);
    const c = median(coldMs);
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
    const res = resultLine(`fork-${o.copies}`, `fork into ${o.copies} running median ${fmtMs(f)}`, `${o.copies} cold boots to the agent median ${fmtMs(c)}`, c / f, TARGET);
    res.details.push(
      `  ${o.runs} rounds per side, alternating; ratio cold/fork of the medians; guest 256 MiB; ready point: the guest agent answers (fork: and the child is re-identified)`,
      `  fork runs: ${forkMs.map(fmtMs).join(', ')}; cold runs: ${coldMs.map(fmtMs).join(', ')}`,
      `  fork steps (medians): capture ${fmtMs(median(steps.capture))}, resume ${o.copies} ${fmtMs(median(steps.start))}, agents + re-identify ${fmtMs(median(steps.reidentify))}; state capture ${mib(stateBytes)}`,
      `  RSS of the ${o.copies} QEMUs at the ready point (medians): forked ${mib(median(forkRss))}, cold-booted ${mib(median(coldRss))} (ratio ${fmtRatio(median(forkRss) / median(coldRss))})`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
