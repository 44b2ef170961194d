import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, guestFiles } from './guest.js';
import { DAEMON_NODE_FLAGS } from '../../src/cli/service-unit.js';

export interface TestDaemon {
  url: string;
  api: string;
  port: number;
  token: string;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  /** fetch against /api/v1 with the token; JSON bodies are encoded. */
  call: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; headers: Headers }>;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
  restart: () => Promise<TestDaemon>;
  cleanup: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  env?: Record<string, string>;
  args?: string[];
  /** How long the daemon may take to answer /health (default 20 s; a restart after a crash may recover VMs first). */
  readyTimeoutMs?: number;
}

/**
 * The real daemon as a user runs it: `bin/grove serve` in its own process, real QEMU (TCG), a private data
 * dir with the test guest's kernel and initrd placed in images/.
 */
export async function startDaemon(opts: StartOptions = {}): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'grove-e2e-'));
  const port = opts.port ?? (await freePort());
  const images = join(dataDir, 'images');
  mkdirSync(images, { recursive: true });
  const g = guestFiles();
  copyFileSync(g.kernel, join(images, 'vmlinuz'));
  copyFileSync(g.initrd, join(images, 'initramfs.gz'));

  let out = '';
  // Started as the systemd unit starts it: this node with the daemon's flags (bin/grove's shebang line has
  // the same), whatever PATH a test gives the daemon. GROVE_E2E_NODE_ARGS (e.g. `--inspect=127.0.0.1:9339`,
  // `--heapsnapshot-signal=SIGUSR2`) adds flags, for looking inside a test's or the soak's daemon.
  const nodeArgs = [...DAEMON_NODE_FLAGS, ...(process.env['GROVE_E2E_NODE_ARGS']?.split(' ').filter(Boolean) ?? [])];
  const serveArgs = ['serve', '--port', String(port), '--data-dir', dataDir, ...(opts.args ?? [])];
  const proc = spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, 'bin', 'grove'), ...serveArgs], {
    env: { ...process.env, GROVE_ACCEL: 'tcg', GROVE_LOG_LEVEL: 'info', ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`daemon exited (${proc.exitCode}):\n${out}`);
    try {
      const r = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`daemon did not come up:\n${out}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  const token = opts.env?.['GROVE_TOKEN'] ?? readFileSync(join(dataDir, 'token'), 'utf8').trim();
  const api = `${url}/api/v1`;

  const d: TestDaemon = {
    url, api, port, token, dataDir, proc,
    output: () => out,
    async call(method, path, body, headers = {}) {
      const h: Record<string, string> = { authorization: `Bearer ${token}`, ...headers };
      let payload: string | undefined;
      if (body !== undefined) { h['content-type'] ??= 'application/json'; payload = typeof body === 'string' ? body : JSON.stringify(body); }
      const r = await fetch(`${api}${path}`, { method, headers: h, ...(payload !== undefined ? { body: payload } : {}) });
      const text = await r.text();
      let parsed: unknown = text;
      try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
      return { status: r.status, body: parsed, headers: r.headers };
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await exited;
    },
    async restart() {
      await d.stop();
      return startDaemon({ ...opts, dataDir, port });
    },
    /** Ends the daemon and every QEMU of its data dir, whatever state a failed test left them in. */
    async cleanup() {
      try {
        if (process.env['GROVE_E2E_DEBUG']) console.log(out);
        await d.stop('SIGKILL');
      } finally {
        killVmsOf(dataDir);
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  return d;
}

/** QEMU outlives the daemon by design; tests end every QEMU of their data dir themselves. */
export function killVmsOf(dataDir: string): void {
  let ids: string[] = [];
  try { ids = readdirSync(join(dataDir, 'vms')); } catch { return; }
  for (const id of ids) {
    try {
      const pid = Number(readFileSync(join(dataDir, 'vms', id, 'qemu.pid'), 'utf8').trim());
      // A stopped VM leaves its pid file behind: only kill the pid if it still is this VM's QEMU.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (pid > 0 && cmdline.includes(join(dataDir, 'vms', id))) process.kill(pid, 'SIGKILL');
    } catch { /* not running */ }
  }
}

export async function createGuestVm(d: TestDaemon, name: string, extra: Record<string, unknown> = {}): Promise<any> {
  const g = guestFiles();
  const r = await d.call('POST', '/vms', { name, kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB: 256, diskGB: 1, ...extra });
  if (r.status !== 201) throw new Error(`create ${name} failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
