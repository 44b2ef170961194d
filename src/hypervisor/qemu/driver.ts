import { spawn, type StdioOptions } from 'node:child_process';
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import type { Accelerator } from '../../domain/vm.js';
import { DomainError } from '../../domain/errors.js';
import type { Hypervisor, LaunchSpec, VmInstance } from '../../ports/hypervisor.js';
import type { Logger } from '../../ports/logger.js';
import { buildQemuOptions, renderArgv } from './config/argv.js';
import { QmpClient } from './qmp/index.js';
import { QemuInstance } from './instance.js';
import { INCOMING_STATE_FD } from './migration.js';
import { QemuSerialLink } from './serial-link.js';
import { prepareConsoleFiles } from './console-files.js';
import { isAlive, procCmdline, waitForProcessEnd } from './proc-stats.js';
import { run } from '../../util/run.js';
import { readRange } from '../../util/files.js';
import { parseQemuVersion } from '../../util/qemu-opts.js';
import { errorMessage } from '../../util/errors.js';
import type { QmpConnectOptions } from './qmp/client.js';

/** Opens the QMP session of a QEMU process; a test puts a failing one in to prove what launch does then. */
export type QmpConnector = (socketPath: string, opts: QmpConnectOptions) => Promise<QmpClient>;

export interface QemuDriverOptions {
  qemuBinary: string;
  accelerator: Accelerator;
  /** Where an instance reports what it cannot hand back to a caller (a failure while watching QEMU exit). */
  log: Logger;
  connectQmp?: QmpConnector;
}

const LAUNCH_TIMEOUT_MS = 30_000;
/** Enough of qemu.log for QEMU's reason for refusing to start, however large earlier boots made the log. */
const START_ERROR_BYTES = 16 * 1024;
/** How long a QEMU that could not be attached gets to die after SIGKILL (its image locks go with it). */
const KILL_WAIT_MS = 10_000;

export class QemuDriver implements Hypervisor {
  constructor(private readonly opts: QemuDriverOptions) {}

  get accelerator(): Accelerator {
    return this.opts.accelerator;
  }

  async version(): Promise<string> {
    const out = await run(this.opts.qemuBinary, ['--version'], 10_000);
    return parseQemuVersion(out.stdout);
  }

  commandLine(spec: LaunchSpec): string[] {
    return [this.opts.qemuBinary, ...renderArgv(buildQemuOptions(spec))];
  }

  async launch(spec: LaunchSpec, consoleFromOffset: number): Promise<VmInstance> {
    const { paths } = spec;
    await Promise.all([paths.qmpSocket, paths.guestAgentSocket, paths.vncSocket, paths.pidFile].map((p) => rm(p, { force: true })));
    await prepareConsoleFiles(paths);
    // QEMU opens its -D log for writing from the start (truncating it): the previous start's log is kept
    // beside it, and this start's reason for failing is read from the beginning.
    await rename(paths.qemuLog, `${paths.qemuLog}.1`).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    const logStart = 0;
    const log = await open(paths.qemuLog, 'a');
    let state: FileHandle | null = null;
    let code: number | null;
    try {
      // A QEMU that is to load a saved state gets the file open at INCOMING_STATE_FD (see loadState).
      if (spec.incoming) state = await open(paths.savedState, 'r');
      const argv = this.commandLine(spec);
      code = await new Promise<number | null>((resolve, reject) => {
        // -daemonize: the parent exits once QEMU is set up (sockets listening), the VM process is
        // re-parented away from us, so it outlives the daemon as libvirt's do.
        const stdio: StdioOptions = ['ignore', 'ignore', log.fd];
        if (state !== null) stdio[INCOMING_STATE_FD] = state.fd;
        const child = spawn(argv[0]!, argv.slice(1), { stdio, detached: true });
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new DomainError('TIMEOUT', 'QEMU did not finish starting in time')); }, LAUNCH_TIMEOUT_MS);
        child.once('error', (e) => { clearTimeout(timer); reject(new DomainError('QEMU_FAILED', `cannot run ${argv[0]}: ${e.message}`)); });
        child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
      });
    } finally {
      await log.close();
      await state?.close();
    }
    if (code !== 0) {
      const msg = (await readRange(paths.qemuLog, logStart, START_ERROR_BYTES).catch(() => Buffer.alloc(0))).toString('utf8').trim();
      throw new DomainError('QEMU_FAILED', `QEMU failed to start (exit ${code}): ${msg || 'no message'}`);
    }
    const pid = await readPid(paths.pidFile);
    if (pid === null) throw new DomainError('QEMU_FAILED', 'QEMU started but wrote no pid file');
    try {
      return await this.attach(pid, spec, consoleFromOffset);
    } catch (e) {
      // A QEMU nobody can manage would hold the disk's lock until a reboot of the host: it goes, and
      // only once it is gone does the start answer (a retry must find the disk free).
      await killAndWait(pid);
      throw new DomainError('QEMU_FAILED', `QEMU started but Grove could not attach to it (${errorMessage(e)}); it was stopped`);
    }
  }

  async adopt(spec: LaunchSpec, consoleFromOffset: number): Promise<VmInstance | null> {
    const pid = await readPid(spec.paths.pidFile);
    if (pid === null || !isAlive(pid)) return null;
    // The pid may have been reused by an unrelated process since: only a QEMU on this VM's socket counts.
    const cmd = await procCmdline(pid);
    if (!cmd || !cmd.some((a) => a.includes(spec.paths.qmpSocket))) return null;
    try {
      return await this.attach(pid, spec, consoleFromOffset);
    } catch {
      // Alive but not answering QMP: it cannot be managed; end it rather than leave it holding the disk.
      await killAndWait(pid);
      return null;
    }
  }

  private async attach(pid: number, spec: LaunchSpec, consoleFromOffset: number): Promise<VmInstance> {
    const connect = this.opts.connectQmp ?? ((socket, o) => QmpClient.connect(socket, o));
    const client = await connect(spec.paths.qmpSocket, { connectTimeoutMs: 5000 });
    try {
      const serial = await QemuSerialLink.open(spec.paths, consoleFromOffset);
      return new QemuInstance(pid, client, serial, spec.paths, this.opts.log);
    } catch (e) {
      await client.close();
      throw e;
    }
  }
}

async function killAndWait(pid: number): Promise<void> {
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  await waitForProcessEnd(pid, KILL_WAIT_MS);
}

async function readPid(file: string): Promise<number | null> {
  try {
    const n = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
