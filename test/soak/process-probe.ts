// What the soak and fault tests read about the daemon and its QEMUs from /proc and the data dir: open fds,
// resident memory, QEMU processes left behind, files left behind.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface ProcSample {
  atMs: number;
  fds: number;
  /** Of `fds`, sockets whose other end is an idle connection of the test's own clients (see clientHeldSockets). */
  clientHeld: number;
  rssKiB: number;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What each open fd points at (socket:[n], a path, anon_inode:...), for telling which ones leaked. */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { out.push(`${fd}→${readlinkSync(`/proc/${pid}/fd/${fd}`)}`); } catch { /* closed meanwhile */ }
  }
  return out;
}

/** TCP sockets by inode, with their local and remote ports, from /proc/net/tcp and tcp6. */
function tcpByInode(): Map<string, { local: number; remote: number }> {
  const out = new Map<string, { local: number; remote: number }>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      out.set(cols[9]!, { local: parseInt(cols[1]!.split(':')[1]!, 16), remote: parseInt(cols[2]!.split(':')[1]!, 16) });
    }
  }
  return out;
}

/**
 * The daemon's sockets whose other end is held open by this (test) process: idle keep-alive connections
 * of our own HTTP clients (undici keeps them as long as the server's Keep-Alive hint, 72 s with Fastify).
 * They are the clients' choice, not the daemon's leak, so fd counts are compared without them.
 */
export function clientHeldSockets(pid: number): number {
  const tcp = tcpByInode();
  const inode = (target: string): string | null => /^socket:\[(\d+)\]$/.exec(target)?.[1] ?? null;
  const mine = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let t = '';
    try { t = readlinkSync(`/proc/self/fd/${fd}`); } catch { continue; }
    const i = inode(t);
    const s = i ? tcp.get(i) : undefined;
    if (s) mine.add(s.local);
  }
  let held = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let t = '';
    try { t = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const i = inode(t);
    const s = i ? tcp.get(i) : undefined;
    if (s && mine.has(s.remote)) held++;
  }
  return held;
}

export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export function sample(pid: number, startedAt: number): ProcSample {
  return { atMs: Date.now() - startedAt, fds: openFds(pid), clientHeld: clientHeldSockets(pid), rssKiB: rssKiB(pid) };
}

/** Samples `pid` every `everyMs` until stopped; the samples form the fd/RSS curve of a run. */
export class Sampler {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number, private readonly startedAt: number, everyMs: number) {
    this.take();
    this.timer = setInterval(() => this.take(), everyMs);
  }
  take(): ProcSample {
    const s = sample(this.pid, this.startedAt);
    this.samples.push(s);
    return s;
  }
  stop(): void { clearInterval(this.timer); }
}

/** The curve in a few numbers: min, max and the value at a few points in time. */
export function summarize(samples: ProcSample[], points = 6): { fds: { min: number; max: number }; rssKiB: { min: number; max: number }; curve: ProcSample[] } {
  const fds = samples.map((s) => s.fds);
  const rss = samples.map((s) => s.rssKiB);
  const curve: ProcSample[] = [];
  for (let i = 0; i < points; i++) {
    const s = samples[Math.round((i * (samples.length - 1)) / Math.max(1, points - 1))];
    if (s && !curve.includes(s)) curve.push(s);
  }
  return { fds: { min: Math.min(...fds), max: Math.max(...fds) }, rssKiB: { min: Math.min(...rss), max: Math.max(...rss) }, curve };
}

/** Live QEMU processes whose command line names a folder under `dataDir`. */
export function qemuPidsOf(dataDir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let cmd: string;
    try { cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.startsWith('qemu-system') || cmd.includes('/qemu-system')) {
      if (cmd.includes(dataDir)) {
        // A zombie has no cmdline; a stopped-but-not-reaped one is still counted (it is an orphan).
        out.push(Number(e));
      }
    }
  }
  return out;
}

/** Every file and folder under `dir`, relative, sorted. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      out.push(relative(dir, p));
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}
