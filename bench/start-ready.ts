import { copyFile, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { Vm } from '../src/domain/vm.js';
import { READY_LINE } from '../test/helpers/guest.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { launchRaw, prepareRaw, waitForConsoleText } from './lib/raw-qemu.js';
import { fmtMs, median, nowMs, resultLine, timed, type BenchResult } from './lib/stats.js';

export interface StartReadyOptions {
  /** Measured starts per side, alternating (grove, raw, raw, grove, ...). */
  runs: number;
}

export const START_READY_DEFAULTS: StartReadyOptions = { runs: 5 };

/**
 * (c) start -> ready line: POST /vms/:id/start with waitFor { console: GROVE-GUEST-READY }, timed from
 * request sent to response received, against the daemon's exact QEMU argv launched by hand (fresh dir,
 * copy of the same disk, same kernel/initrd files) timed from spawn until the ready line is in the
 * console log QEMU writes (polled every 2 ms). QEMU is killed between runs.
 */
export async function benchStartReady(o: StartReadyOptions = START_READY_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('sr');
  try {
    const vm = (await bd.createGuestVm('bench-sr')) as Vm;
    // Warm-up boot, not measured: the guest formats its blank disk on first boot (before the ready line),
    // so both sides then start from the same formatted disk.
    await bd.startReady(vm.id);
    await checkSameArgv(bd, vm);
    await bd.client.ok('POST', `/vms/${vm.id}/force-stop`);
    const template = join(bd.dataDir, 'template-disk.qcow2');
    await copyFile(join(bd.dataDir, 'vms', vm.id, 'disk.qcow2'), template);

    const grove: number[] = [];
    const groveWait: number[] = [];
    const raw: number[] = [];
    const rawLaunch: number[] = [];
    const runGrove = async (): Promise<void> => {
      let body: any;
      grove.push(await timed(async () => {
        body = await bd.startReady(vm.id);
      }));
      if (body.vm.state !== 'running' || !String(body.waitFor?.matched ?? '').includes(READY_LINE)) throw new Error(`start answered ${JSON.stringify(body)}`);
      groveWait.push(body.waitFor.elapsedMs);
      const after = await bd.client.ok('POST', `/vms/${vm.id}/force-stop`);
      if (after.state !== 'stopped') throw new Error(`force-stop left the VM ${after.state}`);
    };
    const runRaw = async (): Promise<void> => {
      const p = await prepareRaw(vm, template, { qemuBinary: bd.cfg.qemuBinary });
      const t0 = nowMs();
      const r = await launchRaw(p);
      const launched = nowMs();
      const ready = await waitForConsoleText(r.spec.paths.consoleOut, READY_LINE, { timeoutMs: 90_000 });
      raw.push(ready - t0);
      rawLaunch.push(launched - t0);
      await r.dispose();
    };
    for (let i = 0; i < o.runs; i++) {
      if (i % 2 === 0) { await runGrove(); await runRaw(); } else { await runRaw(); await runGrove(); }
    }

    const g = median(grove);
    const r = median(raw);
    const res = resultLine('start-ready', `median ${fmtMs(g)}`, `raw QEMU median ${fmtMs(r)}`, g / r, { op: '<=', value: 1.1 });
    res.details.push(
      `  ${o.runs} starts per side, alternating; ratio of medians`,
      `  grove runs: ${grove.map(fmtMs).join(', ')}; raw runs: ${raw.map(fmtMs).join(', ')}`,
      `  info: grove's own waitFor.elapsedMs (launch done -> match) median ${fmtMs(median(groveWait))}, so launch+attach took ~${fmtMs(g - median(groveWait))}; `
        + `raw -daemonize parent exit median ${fmtMs(median(rawLaunch))}`,
    );
    return res;
  } finally {
    await bd.close();
  }
}

/** The benchmark is only meaningful if the hand-launched line is the daemon's: compare with /proc. */
async function checkSameArgv(bd: BenchDaemon, vm: Vm): Promise<void> {
  const dir = join(bd.dataDir, 'vms', vm.id);
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  const live = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
  const p = await prepareRaw(vm, join(dir, 'disk.qcow2'), { qemuBinary: bd.cfg.qemuBinary });
  try {
    // The daemon names the disk by its layer in the pool (vms/<id>/disk.qcow2 links there); the raw copy
    // is a plain file in the raw dir.
    const layer = await realpath(join(dir, 'disk.qcow2'));
    const mine = p.argv.map((a) => a.split(p.spec.paths.disk).join(layer).split(p.spec.paths.dir).join(dir));
    if (JSON.stringify(mine.slice(1)) !== JSON.stringify(live.slice(1))) {
      throw new Error(`hand-built argv differs from the daemon's QEMU:\n  daemon: ${live.join(' ')}\n  bench:  ${mine.join(' ')}`);
    }
  } finally {
    await p.dispose();
  }
}
