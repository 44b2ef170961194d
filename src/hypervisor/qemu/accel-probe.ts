import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Accelerator } from '../../domain/vm.js';
import { errorMessage } from '../../util/errors.js';
import { renderOpts } from '../../util/qemu-opts.js';
import { MACHINE_TYPE, cpuModel } from './config/argv.js';
import { DEBUG_EXIT_PORT, PROBE_DISK_BYTES, PROBE_EXIT_CODE, PROBE_MARKER, probeBootSector } from './probe-guest.js';

/** About twice the slowest pass seen on a loaded 2-core host (see docs/decisions.md), short enough not to hold up start-up. */
export const PROBE_TIMEOUT_MS = 3000;
const STDERR_CAP = 16 * 1024;

export interface AccelProbeOptions {
  /** The QEMU the VMs will run (tests give a fake one). */
  qemuBinary: string;
  accelerator: Accelerator;
  timeoutMs?: number;
}

export type AccelProbeResult =
  | { ok: true; ms: number }
  | { ok: false; ms: number; reason: string };

/** `-machine q35,accel=kvm -cpu host`: the part of the command line the probe shares with every VM. */
export function probedModel(accelerator: Accelerator): string {
  return `-machine ${renderOpts(MACHINE_TYPE, { accel: accelerator })} -cpu ${cpuModel(accelerator)}`;
}

/**
 * Boots the probe guest (probe-guest.ts) with the machine type and CPU model Grove gives its VMs and says
 * whether it wrote its marker and exited as planned. Its disk and serial output live in a temporary
 * directory removed afterwards; nothing is remembered, since the next start may be on another host.
 */
export async function probeAccelerator(o: AccelProbeOptions): Promise<AccelProbeResult> {
  const timeoutMs = o.timeoutMs ?? PROBE_TIMEOUT_MS;
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'grove-accel-probe-'));
  try {
    const disk = join(dir, 'boot.img');
    const serial = join(dir, 'serial.out');
    await writeFile(disk, probeBootSector());
    await truncate(disk, PROBE_DISK_BYTES);
    const args = [
      '-machine', renderOpts(MACHINE_TYPE, { accel: o.accelerator }),
      '-cpu', cpuModel(o.accelerator),
      '-smp', '1', '-m', '32M',
      '-nodefaults', '-no-user-config', '-display', 'none',
      // A guest that resets (a triple fault) ends QEMU instead of booting again and again.
      '-no-reboot',
      '-chardev', renderOpts('file', { id: 'probe-serial', path: serial }),
      '-serial', 'chardev:probe-serial',
      '-blockdev', renderOpts(null, { driver: 'file', filename: disk, 'node-name': 'probe-file', 'read-only': true }),
      '-blockdev', renderOpts(null, { driver: 'raw', file: 'probe-file', 'node-name': 'probe-disk', 'read-only': true }),
      '-device', renderOpts('virtio-blk-pci', { drive: 'probe-disk', bootindex: 0 }),
      '-device', renderOpts('isa-debug-exit', { iobase: `0x${DEBUG_EXIT_PORT.toString(16)}`, iosize: 2 }),
    ];
    const end = await runBounded(o.qemuBinary, args, timeoutMs);
    const ms = Date.now() - started;
    if (end.kind === 'spawn-error') return { ok: false, ms, reason: `cannot run ${o.qemuBinary}: ${end.message}` };
    const marker = (await readFile(serial, 'latin1').catch(() => '')).includes(PROBE_MARKER);
    const said = qemuSaid(end.stderr);
    const tail = said ? `: ${said}` : '';
    if (end.kind === 'timeout') {
      return { ok: false, ms, reason: `the guest ${marker ? 'wrote its marker but did not exit' : 'gave no sign of life'} within ${timeoutMs} ms (QEMU stopped)${tail}` };
    }
    if (end.signal) return { ok: false, ms, reason: `QEMU was killed by ${end.signal}${tail}` };
    if (end.code !== PROBE_EXIT_CODE) return { ok: false, ms, reason: `QEMU exited with status ${end.code ?? 'unknown'}${marker ? '' : ' before the guest wrote its marker'}${tail}` };
    if (!marker) return { ok: false, ms, reason: `the guest exited without writing its marker to the serial port${tail}` };
    return { ok: true, ms };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The line of QEMU's stderr that explains a failure: its first error, else its first line that is not a warning. */
function qemuSaid(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const pick = lines.find((l) => /error/i.test(l)) ?? lines.find((l) => !/warning:/i.test(l));
  return pick === undefined ? '' : pick.slice(0, 300);
}

type Ending =
  | { kind: 'spawn-error'; message: string }
  | { kind: 'timeout'; stderr: string }
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null; stderr: string };

/**
 * Runs QEMU in a process group of its own, so a wrapper script and whatever it started are ended together
 * when the time is up. Should the daemon be told to stop meanwhile, the group is ended first.
 */
function runBounded(cmd: string, args: string[], timeoutMs: number): Promise<Ending> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    let timedOut = false;
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    };
    const onSignal = (sig: NodeJS.Signals): void => {
      killGroup();
      forget();
      // Passed on: with the probe's handler gone the signal does what it would have done without it.
      process.kill(process.pid, sig);
    };
    const forget = (): void => {
      clearTimeout(timer);
      process.off('exit', killGroup);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, timeoutMs);
    process.once('exit', killGroup);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < STDERR_CAP) stderr += d.toString(); });
    child.once('error', (e) => { forget(); resolve({ kind: 'spawn-error', message: errorMessage(e) }); });
    child.once('exit', (code, signal) => {
      forget();
      // A grandchild that escaped the group could hold stderr open; what QEMU said is already read.
      setTimeout(() => child.stderr.destroy(), 200).unref();
      child.once('close', () => resolve(timedOut ? { kind: 'timeout', stderr } : { kind: 'exit', code, signal, stderr }));
    });
  });
}
