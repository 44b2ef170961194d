import { setTimeout as delay } from 'node:timers/promises';
import { EXIT, UsageError, flag, seconds, type Command } from '../command.js';
import type { HostMetrics } from '../../client/index.js';

const MiB = 1024 * 1024;

export const top: Command = {
  name: 'top',
  synopsis: ['top [--interval SECONDS] [--once]'],
  summary: 'Live CPU and memory of the host and of each VM',
  help: `Redraws every --interval seconds (default 2; CPU is the share of one host CPU over the interval,
as in top(1)) until interrupted; busiest VMs first. --once prints one table and exits; with --json, one
JSON line per refresh (the /metrics document).`,
  options: { interval: { type: 'string' }, once: { type: 'boolean' } },
  args: [0, 0],
  async run(ctx, v) {
    const interval = seconds(v, 'interval') ?? 2;
    if (interval < 0.5) throw new UsageError('--interval is at least 0.5 seconds');
    const once = flag(v, 'once');
    const tty = !!process.stdout.isTTY && !ctx.json && !once;
    for (;;) {
      const m = await ctx.client.metrics();
      if (ctx.json) ctx.out(`${JSON.stringify(m)}\n`);
      else ctx.out(`${tty ? '\x1b[H\x1b[2J' : ''}${render(m)}`);
      if (once) return EXIT.OK;
      await delay(interval * 1000);
    }
  },
};

export function render(m: HostMetrics): string {
  const h = m.host;
  const used = h.memoryBytes - h.freeMemoryBytes;
  const head = `host  cpu ${h.cpuPercent.toFixed(1)}%  memory ${fmtMiB(used)} / ${fmtMiB(h.memoryBytes)}  load ${h.loadAverage.map((x) => x.toFixed(2)).join(' ')}  free disk ${fmtMiB(h.freeDiskBytes)}\n\n`;
  const rows = [...m.vms]
    .sort((a, b) => (b.cpuPercent ?? -1) - (a.cpuPercent ?? -1) || a.name.localeCompare(b.name))
    .map((vm) => [vm.name, vm.state, vm.cpuPercent === null ? '-' : `${vm.cpuPercent.toFixed(1)}%`, vm.rssBytes === null ? '-' : fmtMiB(vm.rssBytes), fmtMiB(vm.diskBytes)]);
  const table = [['NAME', 'STATE', 'CPU', 'MEMORY', 'DISK'], ...rows];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) => r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
  return `${head}${lines.join('\n')}\n${rows.length === 0 ? '(no VMs)\n' : ''}`;
}

function fmtMiB(bytes: number): string {
  return bytes >= 10 * 1024 * MiB ? `${(bytes / (1024 * MiB)).toFixed(1)} GiB` : `${Math.round(bytes / MiB)} MiB`;
}
