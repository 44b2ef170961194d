import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataLayout } from '../src/app/layout.js';
import type { Vm } from '../src/domain/vm.js';
import { QemuDriver } from '../src/hypervisor/qemu/driver.js';
import { prepareConsoleFiles } from '../src/hypervisor/qemu/console-files.js';
import { NetTcpGreeting } from '../src/net/tcp-greeting.js';
import type { LaunchSpec } from '../src/ports/hypervisor.js';
import { REPO_ROOT } from '../test/helpers/guest.js';
import { startImageServer } from '../test/helpers/image-server.js';
import { runCommand } from '../test/helpers/run.js';
import { onCleanup } from './lib/cleanup.js';
import { freePort, startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { launchRaw, type RawPrepared } from './lib/raw-qemu.js';
import { fmtMs, median, nowMs, resultLine, type BenchResult } from './lib/stats.js';

export interface LaunchOptions {
  /** Measured launches per side, alternating (grove, raw, raw, grove, ...); each is a Debian boot. */
  runs: number;
}

export const LAUNCH_DEFAULTS: LaunchOptions = { runs: 2 };

const IMAGE_DIR = process.env['GROVE_DEBIAN_IMAGE_DIR'] ?? join(REPO_ROOT, '.cache', 'debian-12');
const MEMORY_MB = 1024;
const READY_TIMEOUT_MS = 8 * 60_000;
/** The reference polls as fast as is sensible: every 100 ms, each attempt waiting up to 2 s for the greeting. */
const RAW_POLL_MS = 100;

/**
 * (l) `grove launch` of the local Debian 12 image until SSH answers, against the same QEMU started by hand.
 *   grove: `grove launch debian-12 NAME --memory 1024 --json` run as a user runs it (the CLI process, from
 *          spawn to exit): create (overlay disk over the shared base, cloud-init seed, SSH forward), start,
 *          wait until the guest's SSH server greets through the forward. The VM is deleted after each run.
 *   raw:   a fresh directory with a qcow2 overlay over the same image file and a copy of the seed the
 *          daemon wrote for the last grove VM, QEMU spawned with the Hypervisor's own commandLine for that
 *          VM (only its forwarded host port differs), then the same SSH greeting polled every 100 ms.
 * Both sides boot a fresh disk (cloud-init's first boot each time). Ratio of the medians.
 */
export async function benchLaunch(o: LaunchOptions = LAUNCH_DEFAULTS): Promise<BenchResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'grove-bench-launch-'));
  const removeScratch = onCleanup(`scratch ${scratch}`, () => rm(scratch, { recursive: true, force: true }));
  // Copied under the build script's lock: a rebuild of the cache meanwhile must not change what is served.
  const lock = join(IMAGE_DIR, '.lock');
  const cp = ['cp', '--reflink=auto', '--', join(IMAGE_DIR, 'debian-12.qcow2'), join(IMAGE_DIR, 'SHA512SUMS'), scratch];
  const copied = existsSync(lock) ? await runCommand('flock', ['-s', lock, ...cp], { timeoutMs: 15 * 60_000 }) : await runCommand(cp[0]!, cp.slice(1));
  if (copied.code !== 0) throw new Error(`no Debian image in ${IMAGE_DIR} (${copied.stderr.trim()}): build it with test/distro/build-debian.sh, or set GROVE_DEBIAN_IMAGE_DIR`);
  const srv = await startImageServer();
  const stopServer = onCleanup('image server', () => srv.close());
  srv.file('/debian-12/debian-12.qcow2', join(scratch, 'debian-12.qcow2'));
  srv.text('/debian-12/SHA512SUMS', await readFile(join(scratch, 'SHA512SUMS'), 'utf8'));
  const catalog = join(scratch, 'catalog.json');
  await writeFile(catalog, JSON.stringify({ distros: [{
    id: 'debian-12', name: 'Debian 12 (local build)', version: '12', arch: 'x86_64', format: 'qcow2',
    url: `${srv.url}/debian-12/debian-12.qcow2`, checksumUrl: `${srv.url}/debian-12/SHA512SUMS`,
  }] }));
  const bd = await startBenchDaemon('launch', { env: { GROVE_CATALOG: catalog } });
  try {
    // The image is local before anything is timed: the figure is the launch, not the download.
    const dl = await bd.client.ok('POST', '/downloads', { distro: 'debian-12' }, 202) as { id: string };
    await waitDownload(bd, dl.id);

    const grove: number[] = [];
    const raw: number[] = [];
    const groveParts: { provisionMs: number; startMs: number; readyMs: number }[] = [];
    /** CPU time of this process (the in-process daemon, and the harness) during each grove launch. */
    const daemonCpu: number[] = [];
    let last: Vm | null = null;
    let run = 0;
    const runGrove = async (): Promise<void> => {
      const name = `bench-launch-${run++}`;
      const cpu0 = process.cpuUsage();
      const t0 = nowMs();
      const r = await runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), 'launch', 'debian-12', name, '--memory', String(MEMORY_MB), '--json',
        '--timeout', String(READY_TIMEOUT_MS / 1000)], { env: { ...process.env, GROVE_URL: bd.daemon.url, GROVE_TOKEN: bd.token }, timeoutMs: READY_TIMEOUT_MS + 60_000 });
      const t1 = nowMs();
      const cpu = process.cpuUsage(cpu0);
      daemonCpu.push((cpu.user + cpu.system) / 1000);
      if (r.code !== 0) throw new Error(`grove launch failed (${r.code}): ${r.stderr}`);
      const out = JSON.parse(r.stdout) as { vm: Vm; ready: { detail: string } | null; durations: { provisionMs: number; startMs: number; readyMs: number } };
      if (out.vm.state !== 'running' || !out.ready?.detail.startsWith('SSH-2.0-')) throw new Error(`grove launch answered ${r.stdout}`);
      grove.push(t1 - t0);
      groveParts.push(out.durations);
      if (last === null) await checkSameArgv(bd, out.vm);
      last = out.vm;
      // The seed and base are kept for the raw side before the VM (and its folder) goes.
      await copyFile(join(bd.dataDir, 'vms', out.vm.id, 'seed.iso'), join(scratch, 'seed.iso'));
      await bd.client.ok('DELETE', `/vms/${out.vm.id}?force=true`, undefined, 204);
    };
    const runRaw = async (): Promise<void> => {
      if (last === null) throw new Error('the raw side needs a grove VM first');
      const p = await prepareLaunchRaw(bd, last, join(scratch, 'seed.iso'));
      try {
        const t0 = nowMs();
        await launchRaw(p);
        await waitSsh(p.spec.vm, READY_TIMEOUT_MS);
        raw.push(nowMs() - t0);
      } finally {
        await p.dispose();
      }
    };
    // The grove side goes first once: the raw side copies its seed and checks the argv against it.
    for (let i = 0; i < o.runs; i++) {
      if (i % 2 === 0) { await runGrove(); await runRaw(); } else { await runRaw(); await runGrove(); }
    }

    const g = median(grove);
    const r = median(raw);
    const res = resultLine('launch', `median ${fmtMs(g)}`, `raw QEMU + seed median ${fmtMs(r)}`, g / r, { op: '<=', value: 1.1 });
    res.details.push(
      `  ${o.runs} launches per side (Debian 12, ${MEMORY_MB} MiB, TCG), alternating; ratio of medians; grove timed as the CLI process (spawn to exit)`,
      `  grove runs: ${grove.map(fmtMs).join(', ')}; raw runs: ${raw.map(fmtMs).join(', ')}`,
      `  grove's own durations (median): create ${fmtMs(median(groveParts.map((x) => x.provisionMs)))}, start ${fmtMs(median(groveParts.map((x) => x.startMs)))}, `
        + `start -> SSH ${fmtMs(median(groveParts.map((x) => x.readyMs)))}; daemon CPU time per launch ${daemonCpu.map(fmtMs).join(', ')} `
        + '(taken from the 2 cores QEMU emulates on)',
    );
    return res;
  } finally {
    await bd.close();
    await stopServer();
    await removeScratch();
  }
}

async function waitDownload(bd: BenchDaemon, id: string): Promise<void> {
  for (;;) {
    const d = await bd.client.ok('GET', `/downloads/${id}`) as { state: string; error: unknown };
    if (d.state === 'completed') return;
    if (d.state !== 'queued' && d.state !== 'running') throw new Error(`download of the Debian image ended ${d.state}: ${JSON.stringify(d.error)}`);
    await sleep(200);
  }
}

/**
 * The raw side's directory: laid out like a VM folder, with a qcow2 overlay over the image (what grove's
 * create makes, also O(1)) and the seed; a free host port for the SSH forward.
 */
async function prepareLaunchRaw(bd: BenchDaemon, groveVm: Vm, seed: string): Promise<RawPrepared> {
  const root = await mkdtemp(join(tmpdir(), 'grove-bench-raw-launch-'));
  const removeDir = onCleanup(`raw dir ${root}`, () => rm(root, { recursive: true, force: true }));
  const vm: Vm = { ...groveVm, network: { mode: 'user', portForwards: [{ host: await freePort(), guest: 22, protocol: 'tcp' }] } };
  const spec: LaunchSpec = { vm, paths: new DataLayout(root).vmPaths(vm.id), accelerator: 'tcg' };
  await mkdir(spec.paths.dir, { recursive: true, mode: 0o700 });
  const base = await baseLayer(bd);
  const made = await runCommand('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, spec.paths.disk, String(vm.diskGB * 1024 ** 3)]);
  if (made.code !== 0) throw new Error(`qemu-img create: ${made.stderr}`);
  await copyFile(seed, spec.paths.seed);
  await prepareConsoleFiles(spec.paths);
  const argv = new QemuDriver({ qemuBinary: bd.cfg.qemuBinary, accelerator: 'tcg', log: bd.daemon.log }).commandLine(spec);
  return { root, spec, argv, extraQmp: null, dispose: removeDir };
}

/**
 * The verified image in images/: the same inode as grove's base layer (a hard link), which the pool
 * removes once the last grove VM is deleted, while the image stays.
 */
async function baseLayer(bd: BenchDaemon): Promise<string> {
  const img = (await bd.client.ok('GET', '/distros') as { id: string; image: { path: string } | null }[]).find((x) => x.id === 'debian-12');
  if (!img?.image) throw new Error('the Debian image is not local');
  return realpath(img.image.path);
}

/** The same readiness as grove's: the SSH server's identification line through the forward. */
async function waitSsh(vm: Vm, timeoutMs: number): Promise<void> {
  const port = vm.network.portForwards[0]!.host;
  const greeting = new NetTcpGreeting();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = await greeting.firstLine('127.0.0.1', port, 2000).catch(() => '');
    if (line.startsWith('SSH-2.0-')) return;
    if (Date.now() > deadline) throw new Error(`raw QEMU: SSH did not answer on port ${port} within ${timeoutMs / 1000} s`);
    await sleep(RAW_POLL_MS);
  }
}

/** The benchmark is only meaningful if the hand-launched line is the daemon's: compare with /proc. */
async function checkSameArgv(bd: BenchDaemon, vm: Vm): Promise<void> {
  const dir = join(await realpath(bd.dataDir), 'vms', vm.id);
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  const live = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
  const layer = await realpath(join(dir, 'disk.qcow2'));
  const spec: LaunchSpec = { vm, paths: { ...new DataLayout(await realpath(bd.dataDir)).vmPaths(vm.id), disk: layer }, accelerator: 'tcg' };
  const mine = new QemuDriver({ qemuBinary: bd.cfg.qemuBinary, accelerator: 'tcg', log: bd.daemon.log }).commandLine(spec);
  if (JSON.stringify(mine.slice(1)) !== JSON.stringify(live.slice(1))) {
    throw new Error(`Hypervisor.commandLine differs from the daemon's QEMU:\n  daemon: ${live.join(' ')}\n  bench:  ${mine.join(' ')}`);
  }
}
