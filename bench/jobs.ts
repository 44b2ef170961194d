import type { Vm } from '../src/domain/vm.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { fmtMs, median, nowMs, resultLine, type BenchResult } from './lib/stats.js';

export interface JobsOptions {
  /** Output of the command, per run (exec keeps at most 16 MiB per stream: qemu-ga's own cap). */
  sizeMiB: number;
  /** Runs per side, alternating. */
  runs: number;
}

export const JOBS_DEFAULTS: JobsOptions = { sizeMiB: 16, runs: 3 };

/**
 * (jobs) The same command — printing `sizeMiB` of output — run as a durable job whose output is followed
 * live (POST /jobs, then GET .../output with Accept: application/octet-stream and follow=true, to the
 * last byte), against POST /exec (guest-exec with captured output, all of it in one answer at the end).
 * Figures: MiB/s from the request to the last byte on each side, and the job's time to its first byte
 * (exec has none before the end). The ratio is the job's time over exec's (lower is better).
 */
export async function benchJobs(o: JobsOptions = JOBS_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('jobs');
  try {
    const vm = (await bd.createGuestVm('bench-jobs', { memoryMB: 512 })) as Vm;
    await bd.startReady(vm.id);
    await waitAgent(bd, vm.id);
    const size = o.sizeMiB * 1024 * 1024;
    const command = `head -c ${size} /dev/zero | tr '\\0' x`;
    const execTimes: number[] = [];
    const jobTimes: number[] = [];
    const firstBytes: number[] = [];

    const viaExec = async (): Promise<void> => {
      const t0 = nowMs();
      const r = await bd.client.ok('POST', `/vms/${vm.id}/exec`, { command, maxOutputBytes: size, timeoutSeconds: 600 }, 200, 700_000);
      execTimes.push(nowMs() - t0);
      if (r.exitCode !== 0 || r.stdout.length !== size) throw new Error(`exec: exit ${r.exitCode}, ${r.stdout.length} bytes`);
    };
    const viaJob = async (): Promise<void> => {
      const t0 = nowMs();
      const { id } = await bd.client.ok('POST', `/vms/${vm.id}/jobs`, { command }, 202);
      const res = await fetch(`${bd.api}/vms/${vm.id}/jobs/${id}/output?follow=true`, { headers: { authorization: `Bearer ${bd.token}`, accept: 'application/octet-stream' } });
      let got = 0;
      let first = 0;
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        if (got === 0) first = nowMs() - t0;
        got += chunk.length;
      }
      jobTimes.push(nowMs() - t0);
      firstBytes.push(first);
      if (got !== size) throw new Error(`job: ${got} bytes of ${size}`);
      const job = await bd.client.ok('GET', `/vms/${vm.id}/jobs/${id}`);
      if (job.exitCode !== 0) throw new Error(`job exit ${job.exitCode}`);
    };

    await viaExec();
    await viaJob();
    execTimes.length = 0; jobTimes.length = 0; firstBytes.length = 0;
    for (let i = 0; i < o.runs; i++) {
      const order = i % 2 === 0 ? [viaJob, viaExec] : [viaExec, viaJob];
      for (const f of order) await f();
    }
    const je = median(jobTimes);
    const ee = median(execTimes);
    const mibs = (ms: number): string => `${(o.sizeMiB / (ms / 1000)).toFixed(1)} MiB/s`;
    const res = resultLine('jobs', `job followed live ${mibs(je)} (${fmtMs(je)})`, `exec ${mibs(ee)} (${fmtMs(ee)})`, je / ee, null);
    res.details.push(
      `  ${o.sizeMiB} MiB of output ('head -c N /dev/zero | tr "\\0" x'), ${o.runs} alternating runs per side after one warm-up each; medians`,
      `  job: first byte after ${fmtMs(median(firstBytes))} (exec answers only at the end); runs ${jobTimes.map(fmtMs).join(', ')}`,
      `  exec runs: ${execTimes.map(fmtMs).join(', ')}`,
    );
    return res;
  } finally {
    await bd.close();
  }
}

async function waitAgent(bd: BenchDaemon, id: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const vm = await bd.client.ok('GET', `/vms/${id}`);
    if (vm.agent?.connected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the daemon never saw the guest agent');
}
