import type { UpdateVm, VmErrorList } from '../../client/index.js';
import { EXIT, UsageError, flag, int, seconds, sizeMiB, str, type Command } from '../command.js';
import type { Column } from '../format.js';
import { bytes, json } from '../output.js';
import { networkFlags } from './vm.js';

export const update: Command = {
  name: 'update', aliases: ['set'],
  synopsis: ['update VM [--name NEW] [--cpu N] [--memory SIZE] [--network user|none] [--port-forward HOST:GUEST[/udp]]... [--no-port-forwards]',
    '            [--autostart true|false]'],
  summary: 'Change a VM: rename it, CPUs, memory, network, autostart (CPU, memory and network need it stopped)',
  help: `--port-forward replaces the VM's forwards with the ones given (repeat it); --no-port-forwards removes them all.
--autostart true: the daemon starts the VM whenever it starts and the VM is not up (stopped, error, or
suspended: resumed), one VM at a time in the order of 'grove ls' (see grove reorder); false: it does not.`,
  options: {
    name: { type: 'string' }, cpu: { type: 'string' }, memory: { type: 'string' }, network: { type: 'string' },
    'port-forward': { type: 'string', multiple: true }, 'no-port-forwards': { type: 'boolean' }, autostart: { type: 'string' },
  },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const body: UpdateVm = {};
    const name = str(v, 'name');
    if (name !== undefined) body.name = name;
    const cpu = int(v, 'cpu', { min: 1 });
    if (cpu !== undefined) body.cpu = cpu;
    const memoryMB = sizeMiB(v, 'memory');
    if (memoryMB !== undefined) body.memoryMB = memoryMB;
    const network = networkFlags(v);
    if (network) body.network = network;
    const autostart = str(v, 'autostart');
    if (autostart !== undefined) {
      if (autostart !== 'true' && autostart !== 'false') throw new UsageError(`--autostart must be true or false (got '${autostart}')`);
      body.autostart = autostart === 'true';
    }
    if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give --name, --cpu, --memory, --network, --port-forward or --autostart');
    const vm = await ctx.client.updateVm(ref!, body);
    ctx.out(ctx.json ? json(vm) : `Updated VM '${vm.name}'.\n`);
    return EXIT.OK;
  },
};

export const stopAll: Command = {
  name: 'stop-all', synopsis: ['stop-all [--timeout S] [--force]'], summary: 'ACPI power-down of every running or paused VM, in parallel',
  help: 'Waits up to --timeout (default 60 s) for each; --force cuts the power of those still up then. Exit 1 when any did not stop.',
  options: { timeout: { type: 'string' }, force: { type: 'boolean' } },
  args: [0, 0],
  async run(ctx, v) {
    const timeoutSeconds = seconds(v, 'timeout');
    const r = await ctx.client.stopAll({ ...(timeoutSeconds ? { timeoutSeconds } : {}), ...(flag(v, 'force') ? { force: true } : {}) });
    if (ctx.json) ctx.out(json(r));
    else if (r.results.length === 0) ctx.out('No VM was running.\n');
    else for (const x of r.results) ctx.out(x.ok ? `Stopped '${x.name}'.\n` : `'${x.name}' did not stop: ${x.error?.detail ?? x.state} (${x.error?.code ?? 'FAILED'})\n`);
    return r.results.every((x) => x.ok) ? EXIT.OK : EXIT.ERROR;
  },
};

interface MetricsRow { name: string; state: string; cpuPercent: number | null; rssBytes: number | null; diskBytes: number }

const METRICS_COLUMNS: Column<MetricsRow>[] = [
  { name: 'name', value: (r) => r.name },
  { name: 'state', value: (r) => r.state },
  { name: 'cpu', value: (r) => (r.cpuPercent === null ? '-' : `${r.cpuPercent.toFixed(1)}%`) },
  { name: 'rss', value: (r) => bytes(r.rssBytes) },
  { name: 'disk', value: (r) => bytes(r.diskBytes) },
];

export const metrics: Command = {
  name: 'metrics', synopsis: ['metrics'], summary: 'Host CPU, memory and disk, and each VM\'s CPU, RSS and disk use', args: [0, 0], listing: true,
  async run(ctx) {
    const m = await ctx.client.metrics();
    if (ctx.format === 'table') {
      ctx.out(`Host: CPU ${m.host.cpuPercent.toFixed(1)}%, memory ${bytes(m.host.memoryBytes - m.host.freeMemoryBytes)} used of ${bytes(m.host.memoryBytes)}, `
        + `disk ${bytes(m.host.freeDiskBytes)} free, load ${m.host.loadAverage.map((l) => l.toFixed(2)).join(' ')}\n\n`);
    }
    // json/yaml without --columns: the API's whole answer (host and VMs).
    ctx.listing(m.vms, METRICS_COLUMNS, ctx.format === 'json' || ctx.format === 'yaml' ? m : m.vms);
    return EXIT.OK;
  },
};

type VmErrorEntry = VmErrorList['errors'][number];
const ERROR_COLUMNS: Column<VmErrorEntry>[] = [
  { name: 'at', value: (e) => e.at },
  { name: 'source', value: (e) => e.source },
  { name: 'message', value: (e) => e.message },
  { name: 'id', value: (e) => String(e.id), extra: true },
];

export const errors: Command = {
  name: 'errors', synopsis: ['errors VM [--limit N]'], summary: 'The errors Grove recorded for a VM (QEMU, operations, guest), newest first',
  options: { limit: { type: 'string' } }, args: [1, 1], listing: true,
  async run(ctx, v, [ref]) {
    const r = await ctx.client.errors(ref!, int(v, 'limit', { min: 1, max: 200 }));
    ctx.listing(r.errors, ERROR_COLUMNS);
    return EXIT.OK;
  },
};

export const consoleClear: Command = {
  name: 'console clear', synopsis: ['console clear VM'], summary: 'Forget the serial output so far (reads start after it)', args: [1, 1],
  async run(ctx, _v, [ref]) {
    const r = await ctx.client.clearConsole(ref!);
    ctx.out(ctx.json ? json(r) : `Cleared the console of '${ref}' (reads start at offset ${r.offset}).\n`);
    return EXIT.OK;
  },
};

export const reorder: Command = {
  name: 'reorder', synopsis: ['reorder VM [VM...]'], summary: 'Put these VMs first in the list, in this order (the others follow)',
  args: [1, 10000], vmArg: null,
  async run(ctx, _v, refs) {
    const vms = await ctx.client.reorderVms(refs);
    ctx.out(ctx.json ? json(vms) : `Order: ${vms.map((vm) => vm.name).join(', ')}\n`);
    return EXIT.OK;
  },
};
