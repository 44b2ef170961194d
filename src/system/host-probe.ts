import os from 'node:os';
import { readFile, stat, statfs } from 'node:fs/promises';
import type { HostFacts, HostProbe } from '../ports/host-facts.js';

export class LinuxHostProbe implements HostProbe {
  private last: { idle: number; total: number } | null = null;
  private osName: string | null = null;

  async facts(): Promise<HostFacts> {
    const cpus = os.cpus();
    const load = os.loadavg();
    return {
      hostname: os.hostname(),
      os: await this.osPrettyName(),
      kernel: os.release(),
      arch: os.arch(),
      cpus: cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      memoryBytes: os.totalmem(),
      freeMemoryBytes: await availableMemory(),
      uptimeSeconds: Math.round(os.uptime()),
      loadAverage: [load[0] ?? 0, load[1] ?? 0, load[2] ?? 0],
    };
  }

  private async osPrettyName(): Promise<string> {
    if (this.osName === null) {
      const text = await readFile('/etc/os-release', 'utf8').catch(() => '');
      this.osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? `${os.type()} ${os.release()}`;
    }
    return this.osName;
  }

  async freeDiskBytes(path: string): Promise<number> {
    const s = await statfs(path);
    return s.bavail * s.bsize;
  }

  async cpuPercent(): Promise<number> {
    const now = os.cpus().reduce((acc, c) => {
      const t = c.times;
      acc.idle += t.idle;
      acc.total += t.user + t.nice + t.sys + t.idle + t.irq;
      return acc;
    }, { idle: 0, total: 0 });
    const prev = this.last;
    this.last = now;
    if (!prev || now.total === prev.total) return 0;
    return Math.round((1 - (now.idle - prev.idle) / (now.total - prev.total)) * 1000) / 10;
  }

  async fileBytes(path: string): Promise<number> {
    // Allocated bytes, not the apparent size: a sparse qcow2 costs what it holds.
    return stat(path).then((s) => s.blocks * 512, () => 0);
  }
}

/** MemAvailable is what a new VM could really get; os.freemem() ignores reclaimable cache. */
async function availableMemory(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const m = /^MemAvailable:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : os.freemem();
}
