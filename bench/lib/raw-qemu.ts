import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { DataLayout } from '../../src/app/layout.js';
import type { Vm } from '../../src/domain/vm.js';
import { QemuDriver } from '../../src/hypervisor/qemu/driver.js';
import { prepareConsoleFiles } from '../../src/hypervisor/qemu/console-files.js';
import { INCOMING_STATE_FD } from '../../src/hypervisor/qemu/migration.js';
import type { LaunchSpec } from '../../src/ports/hypervisor.js';
import { isAlive } from '../../test/helpers/api.js';
import { onCleanup } from './cleanup.js';
import { killAndWait } from './proc.js';

/**
 * QEMU launched by hand with exactly the argv the daemon uses (QemuDriver.commandLine), in a fresh
 * directory laid out like <data>/vms/<id>/, with a copy of the VM's disk. Optionally one extra
 * `-qmp unix:...` monitor, since QEMU serves one client per monitor.
 */
export interface RawVm {
  root: string;
  spec: LaunchSpec;
  argv: string[];
  /** Extra QMP monitor socket, when asked for. */
  extraQmp: string | null;
  pid: number;
  /** Kill QEMU (if alive) and remove its directory. A plain function: it is passed around on its own. */
  dispose: () => Promise<void>;
}

export interface RawPrepared {
  root: string;
  spec: LaunchSpec;
  argv: string[];
  extraQmp: string | null;
  dispose: () => Promise<void>;
}

/** Fresh dir + disk copy + argv; nothing is started yet (so a benchmark can time only the launch). */
export async function prepareRaw(vm: Vm, templateDisk: string, opts: { qemuBinary: string; extraQmp?: boolean }): Promise<RawPrepared> {
  const root = await mkdtemp(join(tmpdir(), 'grove-bench-raw-'));
  const removeDir = onCleanup(`raw dir ${root}`, () => rm(root, { recursive: true, force: true }));
  const spec: LaunchSpec = { vm, paths: new DataLayout(root).vmPaths(vm.id), accelerator: 'tcg' };
  await mkdir(spec.paths.dir, { recursive: true, mode: 0o700 });
  await copyFile(templateDisk, spec.paths.disk);
  await prepareConsoleFiles(spec.paths);
  // Only its argv is used (no instance, so nothing is logged).
  const argv = new QemuDriver({ qemuBinary: opts.qemuBinary, accelerator: 'tcg', log: pino({ level: 'warn' }, pino.destination(2)) }).commandLine(spec);
  const extraQmp = opts.extraQmp ? join(spec.paths.dir, 'qmp-bench.sock') : null;
  if (extraQmp) argv.push('-qmp', `unix:${extraQmp},server=on,wait=off`);
  return { root, spec, argv, extraQmp, dispose: removeDir };
}

/**
 * Runs the argv as the driver does (detached, stderr to the QEMU log, -daemonize: the parent exits once
 * QEMU is set up) and returns the VM's pid from the pid file. `stateFd`: an open saved state, inherited at
 * INCOMING_STATE_FD as the driver passes it (for `migrate-incoming fd:<n>`).
 */
export async function launchRaw(p: RawPrepared, opts: { stateFd?: number } = {}): Promise<RawVm> {
  const log = await open(p.spec.paths.qemuLog, 'a');
  let code: number | null;
  try {
    code = await new Promise<number | null>((resolve, reject) => {
      const stdio: StdioOptions = ['ignore', 'ignore', log.fd];
      if (opts.stateFd !== undefined) stdio[INCOMING_STATE_FD] = opts.stateFd;
      const child = spawn(p.argv[0]!, p.argv.slice(1), { stdio, detached: true });
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
  } finally {
    await log.close();
  }
  if (code !== 0) {
    const msg = await readFile(p.spec.paths.qemuLog, 'utf8').catch(() => '');
    throw new Error(`raw QEMU failed to start (exit ${code}): ${msg.trim() || 'no message'}`);
  }
  const pid = Number.parseInt((await readFile(p.spec.paths.pidFile, 'utf8')).trim(), 10);
  if (!(pid > 0)) throw new Error('raw QEMU wrote no pid file');
  const kill = onCleanup(`raw QEMU ${pid}`, async () => { if (isAlive(pid)) await killAndWait(pid); });
  return {
    root: p.root, spec: p.spec, argv: p.argv, extraQmp: p.extraQmp, pid,
    async dispose() {
      await kill();
      await p.dispose();
    },
  };
}

/**
 * Polls a console log QEMU writes (every `pollMs`, synchronous reads) until `text` appears after
 * `fromOffset`. Resolves with the hrtime (ms) at which it was seen. The log may not exist yet.
 */
export async function waitForConsoleText(logPath: string, text: string, opts: { fromOffset?: number; timeoutMs: number; pollMs?: number }): Promise<number> {
  const pollMs = opts.pollMs ?? 2;
  const deadline = Date.now() + opts.timeoutMs;
  let pos = opts.fromOffset ?? 0;
  let tail = '';
  let fd: number | null = null;
  const buf = Buffer.allocUnsafe(64 * 1024);
  try {
    for (;;) {
      if (fd === null) {
        try { fd = openSync(logPath, 'r'); } catch { /* not created yet */ }
      }
      if (fd !== null) {
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, pos);
          if (n === 0) break;
          pos += n;
          tail += buf.toString('latin1', 0, n);
          if (tail.includes(text)) return Number(process.hrtime.bigint()) / 1e6;
          tail = tail.slice(-text.length);
        }
      }
      if (Date.now() > deadline) throw new Error(`'${text}' did not appear in ${logPath} within ${opts.timeoutMs} ms`);
      await sleep(pollMs);
    }
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
