import { readFileSync } from 'node:fs';
import type { CreateVm, GroveClient, Vm, VmIp, VmRuntime } from '../../client/index.js';
import { localPublicKeys } from '../ssh-keys.js';
import { EXIT, UsageError, flag, int, list, seconds, sizeGiB, sizeMiB, str, type Command, type Context, type Values } from '../command.js';
import { bytes, duration, fields, json, mib, since } from '../output.js';
import type { Column } from '../format.js';
import { errorMessage } from '../../util/errors.js';

function ports(vm: Vm): string {
  if (vm.network.mode === 'none') return 'no network';
  return vm.network.portForwards.map((f) => `${f.host}→${f.guest}${f.protocol === 'udp' ? '/udp' : ''}`).join(',') || '-';
}

function isLive(vm: Vm): boolean {
  return vm.state === 'running' || vm.state === 'paused' || vm.state === 'stopping' || vm.state === 'starting';
}

/** A VM row of `ls`: the VM, its guest address when known, and its remote with --all-remotes. */
export interface VmRow { vm: Vm; ip: string | null; remote: string }

export const VM_COLUMNS: Column<VmRow>[] = [
  { name: 'remote', value: (r) => r.remote, extra: true },
  { name: 'name', value: (r) => r.vm.name },
  { name: 'state', value: (r) => r.vm.state },
  { name: 'cpu', value: (r) => String(r.vm.cpu) },
  { name: 'memory', value: (r) => mib(r.vm.memoryMB) },
  { name: 'disk', value: (r) => `${r.vm.diskGB} GiB` },
  { name: 'ip', value: (r) => r.ip ?? '-' },
  { name: 'ports', value: (r) => ports(r.vm) },
  { name: 'uptime', value: (r) => (isLive(r.vm) ? duration(since(r.vm.startedAt)) : '-') },
  { name: 'id', value: (r) => r.vm.id.slice(0, 8) },
  { name: 'uuid', value: (r) => r.vm.id, extra: true },
  { name: 'distro', value: (r) => r.vm.distro ?? '-', extra: true },
  { name: 'created', value: (r) => r.vm.createdAt, extra: true },
  { name: 'error', value: (r) => r.vm.lastError ?? '', extra: true },
  { name: 'autostart', value: (r) => (r.vm.autostart ? 'yes' : 'no'), extra: true },
];

/** Guest addresses of the VMs whose agent answers (asked in parallel; a VM that cannot say shows none). */
async function guestIps(client: GroveClient, vms: Vm[]): Promise<Map<string, string>> {
  const asked = vms.filter((vm) => vm.agent?.connected);
  const answers = await Promise.all(asked.map((vm) => client.vmIp(vm.id).catch((): VmIp | null => null)));
  const ips = new Map<string, string>();
  asked.forEach((vm, i) => { const ip = answers[i]?.ip; if (ip) ips.set(vm.id, ip); });
  return ips;
}

function agentLine(vm: Vm): string | null {
  if (!vm.agent) return null;
  if (!vm.agent.connected) return 'not answering';
  return `connected (qemu-ga ${vm.agent.version ?? '?'}${vm.agent.os ? `, ${vm.agent.os}` : ''})`;
}

/** How to log in, for VMs with a forward to guest port 22. */
function sshHint(vm: Vm): string | null {
  const fwd = vm.network.mode === 'user' ? vm.network.portForwards.find((f) => f.guest === 22 && f.protocol === 'tcp') : undefined;
  return fwd ? `grove ssh ${vm.name}  (127.0.0.1:${fwd.host}${vm.cloudInit ? `, user ${vm.cloudInit.user}` : ''})` : null;
}

/** Prints the VM in --json mode, else the one-line message. */
function done(ctx: Context, vm: unknown, message: string): number {
  ctx.out(ctx.json ? json(vm) : `${message}\n`);
  return EXIT.OK;
}

export const ls: Command = {
  name: 'ls', aliases: ['list'], synopsis: ['ls [--all-remotes]'], summary: 'List VMs (in their configured order)', args: [0, 0], listing: true,
  help: `--all-remotes lists the VMs of the local daemon and of every remote ('grove remote ls'), with a REMOTE
column (json/yaml: each VM gets a "remote" field); a remote that does not answer is reported on stderr
and the others are still listed (exit 1).
Columns: remote, name, state, cpu, memory, disk, ip, ports, uptime, id (default set without remote),
and uuid, distro, created, error, autostart on request (--columns name,uuid).`,
  options: { 'all-remotes': { type: 'boolean' } },
  async run(ctx, v) {
    if (!flag(v, 'all-remotes')) {
      const vms = await ctx.client.listVms();
      const ips = ctx.format === 'table' || ctx.format === 'csv' ? await guestIps(ctx.client, vms) : new Map<string, string>();
      ctx.listing(vms.map((vm) => ({ vm, ip: ips.get(vm.id) ?? null, remote: ctx.remote ?? 'local' })), VM_COLUMNS, vms);
      return EXIT.OK;
    }
    const names = ['local', ...ctx.config.remotes.keys()];
    const rows: VmRow[] = [];
    let failed = false;
    const answers = await Promise.all(names.map(async (name) => {
      try {
        const client = ctx.clientFor(name);
        const vms = await client.listVms();
        return { name, vms, ips: await guestIps(client, vms) };
      } catch (e) {
        failed = true;
        ctx.err(`grove: remote '${name}': ${errorMessage(e)}\n`);
        return { name, vms: [] as Vm[], ips: new Map<string, string>() };
      }
    }));
    for (const a of answers) for (const vm of a.vms) rows.push({ vm, ip: a.ips.get(vm.id) ?? null, remote: a.name });
    ctx.listing(rows, VM_COLUMNS.map((c) => (c.name === 'remote' ? { ...c, extra: false } : c)), rows.map((r) => ({ remote: r.remote, ...r.vm })));
    return failed ? EXIT.ERROR : EXIT.OK;
  },
};

export function parsePortForward(spec: string): { host: number; guest: number; protocol: 'tcp' | 'udp' } {
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec.trim());
  if (!m) throw new UsageError(`--port-forward must look like HOST:GUEST or HOST:GUEST/udp (got '${spec}')`);
  return { host: Number(m[1]), guest: Number(m[2]), protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp' };
}

export const create: Command = {
  name: 'create', vmArg: 0,
  synopsis: ['create NAME [--kernel FILE --initrd FILE --cmdline TEXT] [--image FILE [--image-format qcow2|raw]] [--iso FILE]',
    '            [--cpu N] [--memory SIZE] [--disk SIZE] [--network user|none] [--port-forward HOST:GUEST[/udp]]...',
    '            [--cloud-init] [--user NAME] [--hostname NAME] [--package PKG]... [--timezone TZ] [--ssh-key FILE]... [--user-data FILE]',
    '            [--autostart]'],
  summary: 'Define a new VM (stopped)',
  help: `Files (--kernel, --initrd, --image, --iso) are paths inside the daemon's <data>/images or <data>/transfer
(relative paths are taken from images/). --memory is MiB unless suffixed (512, 512M, 2G); --disk is GiB
(10, 10G). --port-forward publishes 127.0.0.1:HOST on the host to GUEST in the guest (tcp unless /udp);
repeat it for more ports. --autostart: the daemon starts the VM whenever it starts and the VM is not up
(change it later with grove update VM --autostart false).

cloud-init: --cloud-init, or any of the flags after it, gives the VM a NoCloud seed: a user (--user,
default grove) with passwordless sudo and SSH keys (Grove's own, your ~/.ssh/id_*.pub, each --ssh-key
FILE), --hostname (default: the VM name), --package to install at first boot, --timezone, and your own
cloud-config from --user-data FILE (first line #cloud-config). Such a VM gets a free host port forwarded
to its port 22 unless you forward 22 yourself; then 'grove ssh NAME' logs in. Files named here are read
by the CLI, on this machine.`,
  options: {
    kernel: { type: 'string' }, initrd: { type: 'string' }, cmdline: { type: 'string' }, image: { type: 'string' },
    'image-format': { type: 'string' }, iso: { type: 'string' }, cpu: { type: 'string' }, memory: { type: 'string' },
    disk: { type: 'string' }, network: { type: 'string' }, 'port-forward': { type: 'string', multiple: true },
    'cloud-init': { type: 'boolean' }, user: { type: 'string' }, hostname: { type: 'string' }, package: { type: 'string', multiple: true },
    timezone: { type: 'string' }, 'ssh-key': { type: 'string', multiple: true }, 'user-data': { type: 'string' },
    autostart: { type: 'boolean' },
  },
  args: [1, 1],
  async run(ctx, v, [name]) {
    const body: CreateVm = { name: name! };
    for (const k of ['kernel', 'initrd', 'cmdline', 'image', 'iso'] as const) {
      const val = str(v, k);
      if (val !== undefined) body[k] = val;
    }
    const fmt = str(v, 'image-format');
    if (fmt !== undefined) {
      if (fmt !== 'qcow2' && fmt !== 'raw') throw new UsageError(`--image-format must be qcow2 or raw (got '${fmt}')`);
      body.imageFormat = fmt;
    }
    Object.assign(body, resourceFlags(v));
    const cloudInit = cloudInitFlags(v);
    if (cloudInit) body.cloudInit = cloudInit;
    const vm = await ctx.client.createVm(body);
    const hint = vm.cloudInit ? sshHint(vm) : null;
    return done(ctx, vm, `Created VM '${vm.name}' (${vm.id}).${hint ? `\nSSH once it runs: ${hint}` : ''}`);
  },
};

/** --cpu, --memory, --disk, --network, --port-forward and --autostart, as create and launch take them. */
export function resourceFlags(v: Values): Pick<CreateVm, 'cpu' | 'memoryMB' | 'diskGB' | 'network' | 'autostart'> {
  const out: Pick<CreateVm, 'cpu' | 'memoryMB' | 'diskGB' | 'network' | 'autostart'> = {};
  if (flag(v, 'autostart')) out.autostart = true;
  const cpu = int(v, 'cpu', { min: 1 });
  if (cpu !== undefined) out.cpu = cpu;
  const memoryMB = sizeMiB(v, 'memory');
  if (memoryMB !== undefined) out.memoryMB = memoryMB;
  const diskGB = sizeGiB(v, 'disk');
  if (diskGB !== undefined) out.diskGB = diskGB;
  const network = networkFlags(v);
  if (network) out.network = network;
  return out;
}

/**
 * --network and --port-forward (and, where the command has it, --no-port-forwards: an empty list), as
 * create, launch and update take them; undefined when none is given.
 */
export function networkFlags(v: Values): NonNullable<CreateVm['network']> | undefined {
  const mode = str(v, 'network');
  if (mode !== undefined && mode !== 'user' && mode !== 'none') throw new UsageError(`--network must be user or none (got '${mode}')`);
  const forwards = list(v, 'port-forward').map(parsePortForward);
  const clear = flag(v, 'no-port-forwards');
  if (forwards.length > 0 && clear) throw new UsageError('--port-forward and --no-port-forwards exclude each other');
  if (mode === undefined && forwards.length === 0 && !clear) return undefined;
  return { ...(mode ? { mode } : {}), ...(forwards.length > 0 || clear ? { portForwards: forwards } : {}) };
}

/** The cloud-init part of a create, from its flags; undefined when none asks for cloud-init. */
export function cloudInitFlags(v: Values, home?: string): NonNullable<CreateVm['cloudInit']> | undefined {
  const packages = list(v, 'package');
  const keyFiles = list(v, 'ssh-key');
  const userDataFile = str(v, 'user-data');
  const asked = flag(v, 'cloud-init') || packages.length > 0 || keyFiles.length > 0 || userDataFile !== undefined
    || ['user', 'hostname', 'timezone'].some((k) => str(v, k) !== undefined);
  if (!asked) return undefined;
  const ci: NonNullable<CreateVm['cloudInit']> = {};
  for (const k of ['user', 'hostname', 'timezone'] as const) {
    const val = str(v, k);
    if (val !== undefined) ci[k] = val;
  }
  if (packages.length > 0) ci.packages = packages;
  const keys = [...keyFiles.map((f) => readLocal(f, '--ssh-key').split('\n', 1)[0]!.trim()), ...localPublicKeys(home)];
  if (keys.length > 0) ci.sshAuthorizedKeys = [...new Set(keys)];
  if (userDataFile !== undefined) ci.userData = readLocal(userDataFile, '--user-data');
  return ci;
}

function readLocal(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${what}: cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

export const clone: Command = {
  name: 'clone', synopsis: ['clone VM [NAME]'], summary: 'Copy-on-write clone of a VM, running or not (default name VM-clone)', args: [1, 2],
  async run(ctx, _v, [ref, name]) {
    const vm = await ctx.client.cloneVm(ref!, name !== undefined ? { name } : {});
    return done(ctx, vm, `Cloned '${ref}' as '${vm.name}' (${vm.id}).`);
  },
};

export const show: Command = {
  name: 'show', aliases: ['info', 'inspect'], synopsis: ['show VM'], summary: 'Show one VM (with runtime figures when it runs)', args: [1, 1],
  async run(ctx, _v, [ref]) {
    const vm = await ctx.client.getVm(ref!);
    if (ctx.json) { ctx.out(json(vm)); return EXIT.OK; }
    let rt: VmRuntime | null = null;
    if (isLive(vm)) rt = await ctx.client.runtime(vm.id).catch(() => null);
    const ip = vm.agent?.connected ? await ctx.client.vmIp(vm.id).catch(() => null) : null;
    const boot = [
      vm.boot.kernel ? `kernel ${vm.boot.kernel}` : '', vm.boot.initrd ? `initrd ${vm.boot.initrd}` : '',
      vm.boot.iso ? `iso ${vm.boot.iso}` : '', vm.boot.cmdline ? `cmdline "${vm.boot.cmdline}"` : '',
    ].filter(Boolean).join(', ');
    ctx.out(fields([
      ['Name', vm.name], ['ID', vm.id], ['State', vm.state + (vm.accelerator && isLive(vm) ? ` (${vm.accelerator})` : '')],
      ['CPU', String(vm.cpu)], ['Memory', mib(vm.memoryMB)], ['Disk', `${vm.diskGB} GiB`], ['Distro', vm.distro],
      ['Boot', boot || 'disk'], ['Network', vm.network.mode === 'none' ? 'none' : `user (NAT)${vm.network.portForwards.length ? `, forwards ${ports(vm)}` : ''}`],
      ['Agent', agentLine(vm)], ['IP', ip?.ip ?? null],
      ['Cloud-init', vm.cloudInit ? `user ${vm.cloudInit.user}, hostname ${vm.cloudInit.hostname}${vm.cloudInit.packages.length ? `, packages ${vm.cloudInit.packages.join(' ')}` : ''}` : null],
      ['SSH', sshHint(vm)],
      ['Autostart', vm.autostart ? 'yes' : 'no'],
      ['Created', vm.createdAt], ['Started', vm.startedAt],
      ['Uptime', rt ? duration(rt.uptimeSeconds) : null], ['PID', rt?.pid != null ? String(rt.pid) : null],
      ['CPU usage', rt?.cpuPercent != null ? `${rt.cpuPercent.toFixed(1)} %` : null], ['RSS', rt?.rssBytes != null ? bytes(rt.rssBytes) : null],
      ['Last error', vm.lastError],
    ]));
    return EXIT.OK;
  },
};

export const start: Command = {
  name: 'start', synopsis: ['start VM [--wait-for TEXT|/REGEX/] [--timeout S]'], summary: 'Start a VM (or resume a suspended one)',
  help: `With --wait-for, returns once TEXT (or /regex/flags) appears on the serial console; --timeout (default
60 s) bounds the wait: exit 124 when it passes (the VM keeps running).`,
  options: { 'wait-for': { type: 'string' }, timeout: { type: 'string' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const text = str(v, 'wait-for');
    const timeoutSeconds = seconds(v, 'timeout');
    if (timeoutSeconds !== undefined && text === undefined) throw new UsageError('--timeout needs --wait-for');
    const r = await ctx.client.startVm(ref!, text !== undefined ? { waitFor: { console: text, ...(timeoutSeconds ? { timeoutSeconds } : {}) } } : {});
    const matched = r.waitFor ? ` ('${r.waitFor.matched}' seen on the console after ${(r.waitFor.elapsedMs / 1000).toFixed(1)} s)` : '';
    return done(ctx, r, `Started VM '${r.vm.name}'${matched}.`);
  },
};

export const stop: Command = {
  name: 'stop', synopsis: ['stop VM [--timeout S] [--force]'], summary: 'ACPI power-down; waits for the guest to power off',
  help: 'Waits up to --timeout (default 60 s); then exits 124, or with --force cuts the power.',
  options: { timeout: { type: 'string' }, force: { type: 'boolean' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const timeoutSeconds = seconds(v, 'timeout');
    const vm = await ctx.client.stopVm(ref!, { ...(timeoutSeconds ? { timeoutSeconds } : {}), ...(flag(v, 'force') ? { force: true } : {}) });
    return done(ctx, vm, `Stopped VM '${vm.name}'.`);
  },
};

export const kill: Command = {
  name: 'kill', aliases: ['force-stop'], synopsis: ['kill VM'], summary: 'Cut the power at once (force-stop)', args: [1, 1],
  async run(ctx, _v, [ref]) {
    const vm = await ctx.client.forceStopVm(ref!);
    return done(ctx, vm, `Killed VM '${vm.name}'.`);
  },
};

export const restart: Command = {
  name: 'restart', aliases: ['reboot'], synopsis: ['restart VM [--hard] [--timeout S]'], summary: 'ACPI power cycle (forced after --timeout), or --hard reset',
  options: { hard: { type: 'boolean' }, timeout: { type: 'string' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const timeoutSeconds = seconds(v, 'timeout');
    const vm = await ctx.client.restartVm(ref!, { ...(flag(v, 'hard') ? { hard: true } : {}), ...(timeoutSeconds ? { timeoutSeconds } : {}) });
    return done(ctx, vm, `Restarted VM '${vm.name}'.`);
  },
};

export const pause: Command = {
  name: 'pause', synopsis: ['pause VM'], summary: 'Freeze the vCPUs', args: [1, 1],
  async run(ctx, _v, [ref]) {
    const vm = await ctx.client.pauseVm(ref!);
    return done(ctx, vm, `Paused VM '${vm.name}'.`);
  },
};

export const resume: Command = {
  name: 'resume', synopsis: ['resume VM'], summary: 'Thaw a paused VM', args: [1, 1],
  async run(ctx, _v, [ref]) {
    const vm = await ctx.client.resumeVm(ref!);
    return done(ctx, vm, `Resumed VM '${vm.name}'.`);
  },
};

export const rm: Command = {
  name: 'rm', aliases: ['delete', 'remove'], synopsis: ['rm VM [--force]'], summary: 'Delete a stopped VM and its files (--force: kill it first if running)',
  options: { force: { type: 'boolean' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    // Resolve first so the message (and --json) can name the VM that is gone.
    const vm = await ctx.client.getVm(ref!);
    await ctx.client.deleteVm(vm.id, { force: flag(v, 'force') });
    return done(ctx, { deleted: true, id: vm.id, name: vm.name }, `Deleted VM '${vm.name}'.`);
  },
};
