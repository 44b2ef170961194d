import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Vm } from '../src/domain/vm.js';
import { VmService } from '../src/app/vm-service.js';
import { QemuDriver } from '../src/hypervisor/qemu/driver.js';
import { QemuInstance } from '../src/hypervisor/qemu/instance.js';
import { INCOMING_STATE_FD } from '../src/hypervisor/qemu/migration.js';
import { isAlive } from '../test/helpers/api.js';
import { startBenchDaemon } from './lib/daemon.js';
import { FILL_MB, bootAndFillPair, cpuPercent, daemonQemuPid } from './lib/guest-state.js';
import { Probe } from './lib/probe.js';
import { launchRaw, type RawPrepared, type RawVm } from './lib/raw-qemu.js';
import { RawQmp } from './lib/raw-qmp.js';
import { fmtMs, fmtRatio, median, nowMs, resultLine, type BenchResult, type Target } from './lib/stats.js';

export interface SuspendOptions {
  /** Measured suspend + resume cycles per side, alternating (grove, raw, raw, grove, ...). */
  runs: number;
  warmup: number;
}

export const SUSPEND_DEFAULTS: SuspendOptions = { runs: 13, warmup: 1 };

const TARGET: Target = { op: '<=', value: 1.1 };
const MIGRATION_DONE = ['completed', 'failed', 'cancelled'];

/**
 * (g) suspend to a file + resume of a 256 MiB guest holding 64 MiB of random data in tmpfs.
 *   grove: POST /vms/:id/suspend (answers once the VM is `suspended`: state saved, QEMU gone), then
 *          POST /vms/:id/start (answers once it is `running` again), timed from the first request to the
 *          second answer.
 *   raw:   the same QMP work by hand, on a QEMU launched with the daemon's argv (+ an extra QMP monitor):
 *          `stop`; `migrate-set-capabilities` events on + `migrate-set-parameters` max-bandwidth 64 GiB
 *          (as the daemon sets them); `migrate` to `unix:` socket that the bench serves and writes into a
 *          file (createWriteStream with flush, then rename: exactly the daemon's transport); wait for
 *          MIGRATION `completed`; `quit` and wait for the process to end. Then launch the daemon's
 *          `-incoming defer` argv (+ extra monitor) with -daemonize and the file open at its descriptor 3
 *          (the daemon's transport in), connect, the same two settings, `migrate-incoming fd:3`, wait for
 *          MIGRATION `completed`, `cont`, remove the file.
 * Ratio of the medians of the whole cycle; per-step medians are printed for attribution.
 */
export async function benchSuspend(o: SuspendOptions = SUSPEND_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('susp');
  const probe = new Probe();
  let rawVm: RawVm | null = null;
  /** Kills the first raw QEMU (if alive) and removes the raw dir; registered with bench/lib/cleanup.ts. */
  let removeRawDir: (() => Promise<void>) | null = null;
  /** Kills the current raw QEMU (the one launched by the last resume), if alive. */
  // Typed by a cast: runRaw (a closure) assigns it, which TS's narrowing of a plain `= null` would miss.
  let killCurrent = null as (() => Promise<void>) | null;
  try {
    const vm = (await bd.createGuestVm('bench-susp')) as Vm;
    const tBoot = Date.now();
    rawVm = await bootAndFillPair(bd, vm, { extraQmp: true });
    removeRawDir = rawVm.dispose;
    const bootS = (Date.now() - tBoot) / 1000;
    const idle = await cpuPercent([await daemonQemuPid(bd, vm.id), rawVm.pid], 1000);
    const paths = rawVm.spec.paths;
    // The resume side's argv: the daemon's own for a suspended VM (-incoming defer), plus the extra monitor.
    const driver = new QemuDriver({ qemuBinary: bd.cfg.qemuBinary, accelerator: 'tcg', log: bd.daemon.log });
    const incomingSpec = { ...rawVm.spec, incoming: true };
    const incomingArgv = [...driver.commandLine(incomingSpec), ...(rawVm.extraQmp ? ['-qmp', `unix:${rawVm.extraQmp},server=on,wait=off`] : [])];
    let rawQmp = await RawQmp.connect(paths.qmpSocket);

    for (const m of ['pause', 'resume', 'saveState', 'loadState', 'kill'] as const) probe.wrap(QemuInstance.prototype, m, `instance.${m}`);
    probe.wrap(QemuDriver.prototype, 'launch', 'driver.launch');
    probe.wrap(VmService.prototype, 'suspend', 'VmService.suspend');
    probe.wrap(VmService.prototype, 'start', 'VmService.start (resume)');

    const steps = new Map<string, number[]>();
    const step = (k: string, ms: number): void => { let a = steps.get(k); if (!a) steps.set(k, (a = [])); a.push(ms); };
    const grove: number[] = [];
    const groveSuspend: number[] = [];
    const raw: number[] = [];
    let bytes = 0;

    const prepare = async (q: RawQmp): Promise<void> => {
      await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      await q.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 1024 ** 3 });
    };
    const migrationDone = (q: RawQmp) => q.waitEvent((e) => e.event === 'MIGRATION' && MIGRATION_DONE.includes(String(e.data['status'])))
      .then((e) => { if (e.data['status'] !== 'completed') throw new Error(`migration ${String(e.data['status'])}`); });

    const runGrove = async (record: boolean): Promise<void> => {
      const t0 = nowMs();
      const s = await bd.client.ok('POST', `/vms/${vm.id}/suspend`);
      const t1 = nowMs();
      if (s.state !== 'suspended') throw new Error(`suspend left the VM ${s.state}`);
      const st = await bd.client.ok('POST', `/vms/${vm.id}/start`);
      const t2 = nowMs();
      if ((st.vm ?? st).state !== 'running') throw new Error(`start left the VM ${(st.vm ?? st).state}`);
      if (record) { grove.push(t2 - t0); groveSuspend.push(t1 - t0); step('grove: POST suspend', t1 - t0); step('grove: POST start (resume)', t2 - t1); }
    };

    const runRaw = async (record: boolean): Promise<void> => {
      const q = rawQmp;
      const pid = rawVm!.pid;
      const file = paths.savedState;
      const tmp = `${file}.partial`;
      const ts: [string, number][] = [];
      const mark = (k: string): void => { ts.push([k, nowMs()]); };
      mark('start');
      await q.execute('stop');
      mark('stop');
      await prepare(q);
      await rm(paths.migrationSocket, { force: true });
      const server = createServer();
      const received = new Promise<void>((resolve, reject) => {
        server.once('connection', (sock: Socket) => {
          server.close();
          pipeline(sock, createWriteStream(tmp, { flush: true })).then(resolve, reject);
        });
        server.once('error', reject);
      });
      await new Promise<void>((resolve, reject) => server.listen(paths.migrationSocket, resolve).once('error', reject));
      mark('prepare+listen');
      const done = migrationDone(q);
      await q.execute('migrate', { uri: `unix:${paths.migrationSocket}` });
      await done;
      mark('migrate (MIGRATION completed)');
      await received;
      mark('file written + fsync');
      await rename(tmp, file);
      await rm(paths.migrationSocket, { force: true });
      await q.execute('quit').catch(() => undefined);
      await q.closed;
      mark('quit (QMP closed)');
      while (isAlive(pid)) await new Promise((r) => setTimeout(r, 1));
      mark('process gone');
      const suspended = nowMs();
      if (killCurrent) await killCurrent(); // QEMU is gone: this only unregisters its cleanup

      const prep: RawPrepared = { root: rawVm!.root, spec: incomingSpec, argv: incomingArgv, extraQmp: rawVm!.extraQmp, dispose: async () => {} };
      // The state goes in as Grove does it: the file open at descriptor 3 of the new QEMU, read by QEMU itself.
      const state = await open(file, 'r');
      let next: RawVm;
      try {
        next = await launchRaw(prep, { stateFd: state.fd });
      } finally {
        await state.close();
      }
      mark('launch -incoming defer (-daemonize exit)');
      const q2 = await RawQmp.connect(paths.qmpSocket);
      mark('QMP connect + capabilities');
      await prepare(q2);
      const done2 = migrationDone(q2);
      await q2.execute('migrate-incoming', { uri: `fd:${INCOMING_STATE_FD}` });
      mark('prepare + migrate-incoming');
      await done2;
      mark('load file (MIGRATION completed)');
      await q2.execute('cont');
      mark('cont');
      bytes = (await stat(file)).size;
      await rm(file, { force: true });
      mark('rm file');
      const end = nowMs();
      // The new QEMU replaces the old one (its dispose only kills: the prepared dir's dispose is a no-op).
      rawVm = next;
      killCurrent = next.dispose;
      rawQmp = q2;
      const status = (await q2.execute('query-status')) as { status: string };
      if (status.status !== 'running') throw new Error(`raw VM is ${status.status} after resume`);
      if (record) {
        raw.push(end - ts[0]![1]);
        step('raw: suspend total', suspended - ts[0]![1]);
        step('raw: resume total', end - suspended);
        for (let i = 1; i < ts.length; i++) step(`raw:   ${ts[i]![0]}`, ts[i]![1] - ts[i - 1]![1]);
      }
    };

    probe.enabled = false;
    for (let i = 0; i < o.warmup; i++) { await runGrove(false); await runRaw(false); }
    probe.enabled = true;
    for (let i = 0; i < o.runs; i++) {
      if (i % 2 === 0) { await runGrove(true); await runRaw(true); } else { await runRaw(true); await runGrove(true); }
    }
    rawQmp.close();

    const g = median(grove);
    const r = median(raw);
    const paired = median(grove.map((x, i) => x / raw[i]!));
    const res = resultLine('suspend-resume', `median ${fmtMs(g)}`, `raw stop+migrate→file+quit, launch -incoming (file at fd 3)+load+cont median ${fmtMs(r)}`, g / r, TARGET);
    res.details.push(
      `  ${o.runs} cycles per side after ${o.warmup} warm-up, alternating; ratio of medians; guest 256 MiB with ${FILL_MB} MiB random in tmpfs; state file ${(bytes / 2 ** 20).toFixed(0)} MiB`,
      `  raw transport: out, a unix socket served by the bench and written to a file; in, the file inherited by the new QEMU (the daemon's own ways), not exec:cat`,
      `  grove runs: ${grove.map(fmtMs).join(', ')}; raw runs: ${raw.map(fmtMs).join(', ')}`,
      `  info: median of the per-cycle ratios grove/raw (paired, back to back): ${fmtRatio(paired)}`,
      `  per-step medians:`,
      ...[...steps].map(([k, v]) => `    ${k.padEnd(46)} ${fmtMs(median(v))}`),
      `  inside the daemon (probed, medians):`,
      ...[...probe.samples].map(([k, v]) => `    ${k.padEnd(46)} ${fmtMs(median(v))}`),
      `  (both guests booted and filled in ${bootS.toFixed(1)}s, not measured; idle CPU over 1 s after that: daemon's QEMU ${idle[0]!.toFixed(0)}%, raw QEMU ${idle[1]!.toFixed(0)}% of a core)`,
    );
    return res;
  } finally {
    probe.restore();
    if (killCurrent) await killCurrent().catch(() => undefined);
    if (removeRawDir) await removeRawDir().catch(() => undefined);
    await bd.close();
  }
}
