import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { READY_LINE, guestFiles } from '../../test/helpers/guest.js';
import { onCleanup } from './cleanup.js';
import { killAndWait } from './proc.js';

const LIBVIRTD = '/usr/sbin/libvirtd';
const VIRSH = '/usr/bin/virsh';
/** As root, libvirtd would be the system instance (/etc, /run, /var/lib): it runs as `nobody` instead. */
const NOBODY = 65534;

export interface LibvirtFigures {
  /** libvirtd alone, no guest defined (virtlogd is started with the first guest). */
  idleKiB: number;
  /** libvirtd + virtlogd with one running test guest. */
  oneGuestKiB: number;
  oneGuestDetail: string;
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * The reference daemon: libvirtd (Debian's, `qemu:///session`) started by us with its own temp config,
 * cache and runtime dirs, so the host's libvirt (if any) and its networking are untouched. Returns the
 * reason instead when libvirt is not installed or does not come up.
 */
export async function measureLibvirt(settleMs: number): Promise<LibvirtFigures | string> {
  if (!existsSync(LIBVIRTD) || !existsSync(VIRSH)) return `libvirt is not installed (${LIBVIRTD}, ${VIRSH}; make bench-deps installs it)`;
  const g = guestFiles();
  const root = mkdtempSync('/tmp/grove-bench-libvirt-');
  const removeDir = onCleanup(`libvirt dir ${root}`, () => rm(root, { recursive: true, force: true }));
  const asRoot = process.getuid?.() === 0;
  for (const d of ['run', 'config', 'cache', 'img']) writeDir(join(root, d));
  copyFileSync(g.kernel, join(root, 'img', 'vmlinuz'));
  copyFileSync(g.initrd, join(root, 'img', 'initramfs.gz'));
  const serial = join(root, 'serial.log');
  writeFileSync(join(root, 'guest.xml'), `<domain type='qemu'>
  <name>grove-bench-ref</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>${root}/img/vmlinuz</kernel><initrd>${root}/img/initramfs.gz</initrd><cmdline>${g.cmdline}</cmdline></os>
  <devices><serial type='file'><source path='${serial}'/></serial><memballoon model='none'/></devices>
</domain>
`);
  chmodSync(root, 0o755);
  if (asRoot) for (const p of [root, join(root, 'run'), join(root, 'config'), join(root, 'cache'), join(root, 'img'), join(root, 'guest.xml'), join(root, 'img', 'vmlinuz'), join(root, 'img', 'initramfs.gz')]) chownSync(p, NOBODY, NOBODY);
  const env = { PATH: '/usr/sbin:/usr/bin:/bin', HOME: root, XDG_RUNTIME_DIR: join(root, 'run'), XDG_CONFIG_HOME: join(root, 'config'), XDG_CACHE_HOME: join(root, 'cache') };
  const ids = asRoot ? { uid: NOBODY, gid: NOBODY } : {};

  const daemon = spawn(LIBVIRTD, ['--timeout', '0'], { env, ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
  const pid = daemon.pid!;
  const virtlogdPid = (): number => Number(readFileSafe(join(root, 'run', 'libvirt', 'virtlogd.pid')).trim());
  const stopAll = onCleanup('libvirtd', async () => {
    await virsh(env, ids, ['destroy', 'grove-bench-ref']).catch(() => undefined);
    const vl = virtlogdPid();
    await killAndWait(pid).catch(() => undefined);
    if (vl > 0 && readFileSafe(`/proc/${vl}/cmdline`).includes('virtlogd')) await killAndWait(vl).catch(() => undefined);
  });
  try {
    const sock = join(root, 'run', 'libvirt', 'libvirt-sock');
    const deadline = Date.now() + 15_000;
    while (!existsSync(sock)) {
      if (daemon.exitCode !== null || Date.now() > deadline) return `libvirtd did not start (exit ${daemon.exitCode}): ${log.trim().split('\n').slice(-3).join(' | ')}`;
      await sleep(100);
    }
    await sleep(settleMs);
    const idleKiB = rssKiB(pid);
    await virsh(env, ids, ['define', join(root, 'guest.xml')]);
    await virsh(env, ids, ['start', 'grove-bench-ref']);
    const bootDeadline = Date.now() + 90_000;
    while (!readFileSafe(serial).includes(READY_LINE)) {
      if (Date.now() > bootDeadline) return 'the libvirt guest did not print its ready line within 90 s';
      await sleep(200);
    }
    await sleep(settleMs);
    const daemonKiB = rssKiB(pid);
    const vl = virtlogdPid();
    const logdKiB = vl > 0 ? rssKiB(vl) : 0;
    return { idleKiB, oneGuestKiB: daemonKiB + logdKiB, oneGuestDetail: `libvirtd ${mib(daemonKiB)} + virtlogd ${vl > 0 ? mib(logdKiB) : 'not running'}` };
  } finally {
    await stopAll();
    await removeDir();
  }
}

export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** Mode 0700 exactly (mkdirSync honours the umask): libvirt wants its runtime dir private. */
function writeDir(path: string): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o700);
}

function readFileSafe(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

function virsh(env: Record<string, string>, ids: { uid?: number; gid?: number }, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(VIRSH, ['-c', 'qemu:///session', ...args], { env, ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`virsh ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}
