import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Vm } from '../src/domain/vm.js';
import { READY_LINE } from '../test/helpers/guest.js';
import { startBenchDaemon } from './lib/daemon.js';
import { waitGone } from './lib/proc.js';
import { RawQmp } from './lib/raw-qmp.js';
import { launchRaw, prepareRaw, waitForConsoleText } from './lib/raw-qemu.js';
import { fmtMs, median, nowMs, resultLine, timed, type BenchResult } from './lib/stats.js';

export interface StopOptions {
  /** Measured stops per side, alternating. */
  runs: number;
}

export const STOP_DEFAULTS: StopOptions = { runs: 7 };

/**
 * A power-button press that arrives before the guest's acpid has opened its input device is lost for good
 * (the guest then never powers off). The test guest's init now prints its ready line only once acpid holds
 * /dev/input/event*, but it gives up waiting after ~2 s and prints it anyway, and a test guest built before
 * that change does not wait at all. Both sides therefore still let the booted guest settle this long before
 * the timed stop (not measured), so a slow acpid cannot turn a run into a timeout.
 */
const SETTLE_MS = 1500;
const STOP_TIMEOUT_S = 30;

/**
 * (d) ACPI stop: POST /vms/:id/stop (answers once QEMU has exited and the VM is `stopped`), against
 * `system_powerdown` sent over QMP to the daemon's argv launched by hand, timed until QEMU closes the QMP
 * connection (it exits). Each run first boots its guest to the ready line and lets it settle (not measured).
 */
export async function benchStop(o: StopOptions = STOP_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('stop');
  try {
    const vm = (await bd.createGuestVm('bench-stop')) as Vm;
    // Warm-up cycle (not measured); the guest formats its disk on the first boot.
    await bd.startReady(vm.id);
    await sleep(SETTLE_MS);
    await bd.client.ok('POST', `/vms/${vm.id}/stop`, { timeoutSeconds: STOP_TIMEOUT_S });
    const template = join(bd.dataDir, 'template-disk.qcow2');
    await copyFile(join(bd.dataDir, 'vms', vm.id, 'disk.qcow2'), template);

    const grove: number[] = [];
    const raw: number[] = [];
    const rawGone: number[] = [];
    const runGrove = async (): Promise<void> => {
      await bd.startReady(vm.id);
      await sleep(SETTLE_MS);
      let after: any;
      grove.push(await timed(async () => { after = await bd.client.ok('POST', `/vms/${vm.id}/stop`, { timeoutSeconds: STOP_TIMEOUT_S }); }));
      if (after.state !== 'stopped') throw new Error(`stop left the VM ${after.state}`);
    };
    const runRaw = async (): Promise<void> => {
      const p = await prepareRaw(vm, template, { qemuBinary: bd.cfg.qemuBinary });
      const r = await launchRaw(p);
      try {
        await waitForConsoleText(r.spec.paths.consoleOut, READY_LINE, { timeoutMs: 90_000 });
        await sleep(SETTLE_MS);
        const q = await RawQmp.connect(r.spec.paths.qmpSocket);
        const t0 = nowMs();
        await q.execute('system_powerdown');
        let timer: NodeJS.Timeout | undefined;
        const closed = await Promise.race([q.closed.then(() => true), new Promise<boolean>((res) => { timer = setTimeout(() => res(false), STOP_TIMEOUT_S * 1000); })]);
        clearTimeout(timer);
        if (!closed) throw new Error(`raw QEMU did not exit within ${STOP_TIMEOUT_S} s of system_powerdown`);
        raw.push(nowMs() - t0);
        if (await waitGone(r.pid, 10_000, 1)) rawGone.push(nowMs() - t0);
      } finally {
        await r.dispose();
      }
    };
    for (let i = 0; i < o.runs; i++) {
      if (i % 2 === 0) { await runGrove(); await runRaw(); } else { await runRaw(); await runGrove(); }
    }

    const g = median(grove);
    const r = median(raw);
    const res = resultLine('stop', `median ${fmtMs(g)}`, `raw system_powerdown median ${fmtMs(r)}`, g / r, null);
    res.details.push(
      `  ${o.runs} stops per side, alternating; ratio of medians (no target set; libvirt here: 345 ms vs 70 ms raw = 4.9x)`,
      `  grove runs: ${grove.map(fmtMs).join(', ')}; raw runs: ${raw.map(fmtMs).join(', ')}`,
      `  info: raw until the QEMU process was gone (not just its QMP socket): median ${fmtMs(median(rawGone))}`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
