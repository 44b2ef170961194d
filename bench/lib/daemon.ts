import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { parseDaemonConfig, type DaemonConfig } from '../../src/daemon/config.js';
import type { Vm } from '../../src/domain/vm.js';
import { READY_LINE, guestFiles } from '../../test/helpers/guest.js';
import { freePort } from '../../test/helpers/daemon.js';
import { onCleanup } from './cleanup.js';
import { ApiClient } from './http.js';
import { killAndWait } from './proc.js';

export const GUEST_MEMORY_MB = 256;

export { freePort };

export interface BenchDaemon {
  daemon: Daemon;
  cfg: DaemonConfig;
  dataDir: string;
  /** http://127.0.0.1:PORT/api/v1 */
  api: string;
  token: string;
  client: ApiClient;
  /**
   * Defines a VM that boots the test guest (kernel + initrd copied to <data>/images/), 1 GiB disk unless
   * `extra` says otherwise (its fields override the defaults and are checked on the answer).
   */
  createGuestVm(name: string, extra?: Record<string, unknown>): Promise<Vm>;
  /** POST /vms/:id/start with waitFor on the ready line; resolves to the answer's body ({ vm, waitFor }). */
  startReady(id: string, timeoutSeconds?: number): Promise<any>;
  close(): Promise<void>;
}

/**
 * The real daemon, started in this process through the composition root (startDaemon) with a private
 * temp data dir, a random loopback port and TCG. Logging goes to stderr at `warn` (per-request logging
 * is off in the daemon anyway), so the figures do not include a pretty-printer.
 */
export async function startBenchDaemon(label: string, opts: { env?: Record<string, string> } = {}): Promise<BenchDaemon> {
  const g = guestFiles();
  const dataDir = await mkdtemp(join(tmpdir(), `grove-bench-${label}-`));
  const removeDir = onCleanup(`data dir ${dataDir}`, () => rm(dataDir, { recursive: true, force: true }));
  await mkdir(join(dataDir, 'images'), { recursive: true });
  await copyFile(g.kernel, join(dataDir, 'images', 'vmlinuz'));
  await copyFile(g.initrd, join(dataDir, 'images', 'initramfs.gz'));

  const port = await freePort();
  const cfg = parseDaemonConfig(
    ['--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, '--accel', 'tcg', '--log-level', process.env['GROVE_BENCH_LOG_LEVEL'] ?? 'warn'],
    { ...process.env, GROVE_TOKEN: undefined, GROVE_ALLOWED_HOSTS: undefined, ...(opts.env ?? {}) },
  );
  const log = pino({ level: cfg.logLevel }, pino.destination({ fd: 2, sync: true }));
  const daemon = await startDaemon(cfg, log);
  const killVms = onCleanup(`QEMUs of ${dataDir}`, () => killVmsOf(dataDir));
  const stopDaemon = onCleanup(`daemon on port ${port}`, () => daemon.close());
  const api = `${daemon.url}/api/v1`;
  const client = new ApiClient(api, daemon.token);
  // Dropping our connections first means closing the daemon never waits on a request still in flight.
  const closeClient = onCleanup('API client', () => client.close());

  return {
    daemon, cfg, dataDir, api, token: daemon.token, client,
    async createGuestVm(name, extra = {}) {
      const vm = (await client.ok('POST', '/vms', {
        name, kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB: GUEST_MEMORY_MB, diskGB: 1, ...extra,
      }, 201)) as Vm;
      for (const [k, v] of Object.entries(extra)) {
        const got = (vm as unknown as Record<string, unknown>)[k];
        if (got !== v) throw new Error(`VM ${name} was created with ${k} ${JSON.stringify(got)}, asked ${JSON.stringify(v)}`);
      }
      return vm;
    },
    async startReady(id, timeoutSeconds = 90) {
      return client.ok('POST', `/vms/${id}/start`, { waitFor: { console: READY_LINE, timeoutSeconds } });
    },
    async close() {
      await closeClient();
      // Daemon first: it detaches from its QEMUs, so their deaths are not handled against a closed db.
      await stopDaemon();
      await killVms();
      await removeDir();
    },
  };
}

/**
 * QEMU outlives the daemon by design: every QEMU of the data dir is ended by pid file. Unlike the test
 * helpers' (sync) killVmsOf, this one waits until each QEMU is really gone (zombies count as gone), so the
 * data dir is removed, and the next benchmark starts, without a dying QEMU still running.
 */
export async function killVmsOf(dataDir: string): Promise<void> {
  let ids: string[] = [];
  try { ids = await readdir(join(dataDir, 'vms')); } catch { return; }
  for (const id of ids) {
    const pid = Number((await readFile(join(dataDir, 'vms', id, 'qemu.pid'), 'utf8').catch(() => '')).trim());
    // Only a QEMU of this data dir: a stale pid file may name a reused pid.
    const cmd = pid > 0 ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
    if (cmd.includes(dataDir)) await killAndWait(pid).catch(() => undefined);
  }
}
