import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Vm } from '../../src/domain/vm.js';
import type { VmPaths } from '../../src/ports/hypervisor.js';
import { READY_LINE } from '../../test/helpers/guest.js';
import type { BenchDaemon } from './daemon.js';
import { launchRaw, prepareRaw, waitForConsoleText, type RawVm } from './raw-qemu.js';

/** What is written into the guest's tmpfs so its RAM state is not trivial (64 MiB of random bytes). */
export const FILL_COMMAND = 'dd if=/dev/urandom of=/tmp/fill bs=1M count=64 2>/dev/null; sync';
export const FILL_MB = 64;

/**
 * Boots the daemon's VM (through the API) and a hand-launched QEMU with the same argv plus an extra QMP
 * monitor (on a copy of the VM's disk) at the same time, both to the ready line, then writes 64 MiB of
 * random data into each guest's /tmp (tmpfs): through `POST /vms/:id/console/execute` on the daemon's,
 * by typing into the console FIFO on the raw one. Nothing here is measured.
 */
export async function bootAndFillPair(bd: BenchDaemon, vm: Vm, opts: { extraQmp: boolean }): Promise<RawVm> {
  const raw = await prepareRaw(vm, join(bd.dataDir, 'vms', vm.id, 'disk.qcow2'), { qemuBinary: bd.cfg.qemuBinary, extraQmp: opts.extraQmp });
  const [started, rawVm] = await Promise.all([
    bd.startReady(vm.id, 120),
    launchRaw(raw).then(async (r) => { await waitForConsoleText(r.spec.paths.consoleOut, READY_LINE, { timeoutMs: 120_000 }); return r; }),
  ]);
  if (started.vm.state !== 'running') throw new Error(`daemon VM is ${started.vm.state} after start`);
  await Promise.all([fillGrove(bd, vm.id), fillRaw(rawVm.spec.paths)]);
  return rawVm;
}

export async function fillGrove(bd: BenchDaemon, vmId: string): Promise<void> {
  const r = await bd.client.ok('POST', `/vms/${vmId}/console/execute`, { command: FILL_COMMAND, timeoutSeconds: 120 }, 200, 150_000);
  if (r.exitCode !== 0) throw new Error(`filling the daemon's guest failed: ${JSON.stringify(r)}`);
}

/** Types the command into the raw QEMU's console FIFO and waits for a marker the shell computes. */
export async function fillRaw(paths: VmPaths): Promise<void> {
  const from = await stat(paths.consoleOut).then((s) => s.size, () => 0);
  // $((40+2)) so the echoed command line itself does not contain the marker.
  const line = `${FILL_COMMAND}; echo FILL-$((40+2))-DONE-$?\n`;
  const fh = await open(paths.consoleIn, 'r+');
  try { await fh.write(line); } finally { await fh.close(); }
  await waitForConsoleText(paths.consoleOut, 'FILL-42-DONE-0', { fromOffset: from, timeoutMs: 120_000, pollMs: 20 });
}

/** CPU used by each process over `ms` (percent of one core, from /proc/<pid>/stat utime + stime). */
export async function cpuPercent(pids: number[], ms: number): Promise<number[]> {
  const ticks = async (pid: number): Promise<number> => {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  };
  const a = await Promise.all(pids.map(ticks));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = await Promise.all(pids.map(ticks));
  const wall = (Date.now() - t0) / 1000;
  return b.map((x, i) => ((x - a[i]!) / 100 / wall) * 100); // USER_HZ is 100 on Linux
}

/** The pid of the daemon's QEMU for a VM, from its pid file. */
export async function daemonQemuPid(bd: BenchDaemon, vmId: string): Promise<number> {
  return Number((await readFile(join(bd.dataDir, 'vms', vmId, 'qemu.pid'), 'utf8')).trim());
}
