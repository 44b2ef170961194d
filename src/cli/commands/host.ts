import { EXIT, type Command } from '../command.js';
import { bytes, duration, fields, json } from '../output.js';

export const host: Command = {
  name: 'host', synopsis: ['host'], summary: 'Host facts: CPU, memory, disk, QEMU, accelerator, versions', args: [0, 0],
  async run(ctx) {
    const h = await ctx.client.host();
    if (ctx.json) { ctx.out(json(h)); return EXIT.OK; }
    ctx.out(fields([
      ['Hostname', h.hostname], ['OS', h.os], ['Kernel', h.kernel], ['Arch', h.arch],
      ['CPUs', `${h.cpus} × ${h.cpuModel}`], ['Memory', `${bytes(h.freeMemoryBytes)} free of ${bytes(h.memoryBytes)}`],
      ['Load', h.loadAverage.map((l) => l.toFixed(2)).join(' ')], ['Data dir', `${h.dataDir} (${bytes(h.freeDiskBytes)} free)`],
      ['QEMU', h.qemuVersion], ['Accelerator', `${h.accelerator} (${h.acceleratorReason})`],
      ['Grove', h.groveVersion], ['Daemon uptime', duration(h.daemonUptimeSeconds)], ['Host uptime', duration(h.uptimeSeconds)],
    ]));
    return EXIT.OK;
  },
};
