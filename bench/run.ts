/**
 * Grove benchmarks: each figure is measured against its reference in the same run, on this machine.
 *   npm run bench            (build, then node dist/bench/run.js)
 *   make bench               (also installs QEMU and builds the test guest; GROVE_ACCEL=tcg)
 *   node dist/bench/run.js --only pause-resume,stop --quick
 * Exit status: 0 when every benchmark ran (a missed target prints MISS, it is a measurement), 1 when one
 * crashed. Everything runs on loopback and unix sockets; QEMU always uses TCG.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { guestFiles } from '../test/helpers/guest.js';
import { cleanupAll, exitAfterCleanup, installSignalCleanup, interrupted } from './lib/cleanup.js';
import { fmtRatio, fmtTarget, type BenchResult } from './lib/stats.js';
import { CLONE_DEFAULTS, benchClone } from './clone.js';
import { LIST_VMS_DEFAULTS, benchListVms } from './list-vms.js';
import { MCP_LIST_DEFAULTS, benchMcpList } from './mcp-list.js';
import { PAUSE_RESUME_DEFAULTS, benchPauseResume } from './pause-resume.js';
import { SNAPSHOTS_DEFAULTS, benchSnapshots } from './snapshots.js';
import { START_READY_DEFAULTS, benchStartReady } from './start-ready.js';
import { STOP_DEFAULTS, benchStop } from './stop.js';
import { SUSPEND_DEFAULTS, benchSuspend } from './suspend.js';
import { WEBHOOKS_DEFAULTS, benchWebhooks } from './webhooks.js';
import { DOWNLOAD_DEFAULTS, benchDownload } from './download.js';
import { AGENT_DEFAULTS, benchAgent } from './agent.js';
import { LAUNCH_DEFAULTS, benchLaunch } from './launch.js';
import { VNC_DEFAULTS, benchVnc } from './vnc.js';
import { WEBUI_DEFAULTS, benchWebUi } from './webui.js';
import { MCP_VS_REST_DEFAULTS, benchMcpVsRest } from './mcp-vs-rest.js';
import { JOBS_DEFAULTS, benchJobs } from './jobs.js';
import { FORK_DEFAULTS, benchFork } from './fork.js';
import { WAIT_DEFAULTS, benchWait } from './wait.js';
import { FOOTPRINT_DEFAULTS, benchFootprint } from './footprint.js';

/** The whole run; the launch benchmark alone boots Debian four times under TCG (2 minutes each). */
const WATCHDOG_MS = 30 * 60_000;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

const quick = values.quick ?? false;
const BENCHES: { name: string; run: () => Promise<BenchResult | BenchResult[]> }[] = [
  { name: 'list-vms', run: () => benchListVms(quick ? { ...LIST_VMS_DEFAULTS, durationS: 2, warmupS: 1, rounds: 1 } : LIST_VMS_DEFAULTS) },
  { name: 'mcp-list', run: () => benchMcpList(quick ? { ...MCP_LIST_DEFAULTS, durationS: 2, warmupS: 1, rounds: 1 } : MCP_LIST_DEFAULTS) },
  { name: 'pause-resume', run: () => benchPauseResume(quick ? { rounds: 40, warmup: 5, block: 10 } : PAUSE_RESUME_DEFAULTS) },
  { name: 'start-ready', run: () => benchStartReady(quick ? { runs: 1 } : START_READY_DEFAULTS) },
  { name: 'stop', run: () => benchStop(quick ? { runs: 1 } : STOP_DEFAULTS) },
  { name: 'webhooks', run: () => benchWebhooks(quick ? { ...WEBHOOKS_DEFAULTS, sequential: 20, warmup: 5, burst: 100 } : WEBHOOKS_DEFAULTS) },
  { name: 'snapshots', run: () => benchSnapshots(quick ? { runs: 1, warmup: 0 } : SNAPSHOTS_DEFAULTS) },
  { name: 'suspend', run: () => benchSuspend(quick ? { runs: 1, warmup: 0 } : SUSPEND_DEFAULTS) },
  { name: 'clone', run: () => benchClone(quick ? { runs: 1, warmup: 0, copies: 1, liveRuns: 1 } : CLONE_DEFAULTS) },
  { name: 'download', run: () => benchDownload(quick ? { sizeMiB: 32, runs: 1, warmup: 0 } : DOWNLOAD_DEFAULTS) },
  { name: 'agent', run: () => benchAgent(quick ? { execRuns: 10, execBlock: 1, fileMiB: 8, fileRuns: 1 } : AGENT_DEFAULTS) },
  { name: 'launch', run: () => benchLaunch(quick ? { runs: 1 } : LAUNCH_DEFAULTS) },
  { name: 'vnc', run: () => benchVnc(quick ? { ...VNC_DEFAULTS, rounds: 1, seconds: 2 } : VNC_DEFAULTS) },
  { name: 'webui', run: () => benchWebUi(quick ? { vms: 20, paints: 2, starts: 1 } : WEBUI_DEFAULTS) },
  { name: 'mcp-vs-rest', run: () => benchMcpVsRest(quick ? { ...MCP_VS_REST_DEFAULTS, durationS: 1, warmupS: 1, rounds: 1 } : MCP_VS_REST_DEFAULTS) },
  { name: 'jobs', run: () => benchJobs(quick ? { ...JOBS_DEFAULTS, sizeMiB: 8, runs: 1 } : JOBS_DEFAULTS) },
  { name: 'fork', run: () => benchFork(quick ? { runs: 1, copies: 2 } : FORK_DEFAULTS) },
  { name: 'wait', run: () => benchWait(quick ? { runs: 3, pollMs: 100 } : WAIT_DEFAULTS) },
  { name: 'footprint', run: () => benchFootprint(quick ? { ...FOOTPRINT_DEFAULTS, vms: 4, scrapes: 10, burstRounds: 1, settleMs: 3000 } : FOOTPRINT_DEFAULTS) },
];

if (values.help) {
  console.log(`usage: node dist/bench/run.js [--only ${BENCHES.map((b) => b.name).join(',')}] [--quick]`);
  process.exit(0);
}
const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : null;
for (const n of only ?? []) {
  if (!BENCHES.some((b) => b.name === n)) { console.error(`unknown benchmark '${n}'`); process.exit(2); }
}

installSignalCleanup();
process.on('unhandledRejection', (e) => {
  console.error('bench: unhandled rejection:', e);
  exitAfterCleanup(1);
});
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60_000} min, giving up`);
  exitAfterCleanup(1);
}, WATCHDOG_MS);
watchdog.unref();

function qemuVersion(): string {
  try {
    return execFileSync(process.env['GROVE_QEMU'] ?? 'qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '?';
  } catch (e) {
    return `not runnable (${(e as Error).message})`;
  }
}

async function main(): Promise<number> {
  guestFiles(); // throws with "run test/guest/build.sh" when the test guest is missing
  if (process.env['GROVE_ACCEL'] && process.env['GROVE_ACCEL'] !== 'tcg') {
    console.log(`note: GROVE_ACCEL=${process.env['GROVE_ACCEL']} ignored; the benchmarks always use TCG`);
  }
  const load = loadavg()[0]!;
  console.log(`grove bench ${new Date().toISOString()} | node ${process.version} | ${qemuVersion()} | ${cpus().length} CPUs | load ${load.toFixed(2)}${quick ? ' | QUICK (smoke test, figures not meaningful)' : ''}`);
  if (load > 1) console.log(`warning: load average ${load.toFixed(2)}: other work on this machine will add noise`);

  const t0 = Date.now();
  const results: BenchResult[] = [];
  const crashed: string[] = [];
  for (const b of BENCHES) {
    if (only && !only.includes(b.name)) continue;
    if (interrupted) break;
    const started = Date.now();
    try {
      // A benchmark may report several results (snapshots: create and restore).
      for (const r of [await b.run()].flat()) {
        results.push(r);
        console.log(r.line);
        for (const d of r.details) console.log(d);
      }
      console.log(`  (${((Date.now() - started) / 1000).toFixed(0)}s)`);
    } catch (e) {
      crashed.push(b.name);
      console.log(`${b.name}: CRASHED: ${(e as Error).stack ?? String(e)}`);
    } finally {
      await cleanupAll();
    }
  }

  console.log(`\nsummary (${((Date.now() - t0) / 1000).toFixed(0)}s, ${new Date().toISOString().slice(0, 10)})`);
  const rows = [
    ['benchmark', 'grove', 'reference', 'ratio', 'target', 'verdict'],
    ...results.map((r) => [r.name, r.grove, r.reference, fmtRatio(r.ratio), fmtTarget(r.target), r.verdict]),
    ...crashed.map((n) => [n, '-', '-', '-', '-', 'CRASHED']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  return crashed.length > 0 ? 1 : 0;
}

main().then(
  async (code) => { await cleanupAll(); process.exit(interrupted ? 130 : code); },
  async (e) => { console.error(e); await cleanupAll(); process.exit(1); },
);
