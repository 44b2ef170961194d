import type { WaitConditionInput } from '../../client/index.js';
import { EXIT, UsageError, flag, int, list, seconds, str, type Command } from '../command.js';
import { json } from '../output.js';

export const wait: Command = {
  name: 'wait',
  synopsis: ['wait VM [--console TEXT|/RE/]... [--agent] [--ip] [--port N]... [--file PATH]... [--command LINE]... [--state S]... [--event TYPE]...',
    '          [--all] [--timeout S]'],
  summary: 'Wait (server-side) until a VM is ready: console text, agent, IP, open port, file, command, state, event',
  help: `Each flag is one condition; the daemon answers as soon as any one holds (--all: every one), without
polling from here. --console matches output from now on; --port N is a TCP socket listening in the guest;
--command LINE must exit 0 (re-run with back-off); --event TYPE is an event of this VM (vm.stopped,
agent.connected, ...). --timeout (default 60 s): exit 124 when it passes, naming what is pending. A VM that
stops or fails meanwhile ends the wait at once (exit 1). Prints each matched condition and its evidence.`,
  options: {
    console: { type: 'string', multiple: true }, agent: { type: 'boolean' }, ip: { type: 'boolean' }, port: { type: 'string', multiple: true },
    file: { type: 'string', multiple: true }, command: { type: 'string', multiple: true }, state: { type: 'string', multiple: true },
    event: { type: 'string', multiple: true }, all: { type: 'boolean' }, timeout: { type: 'string' },
  },
  args: [1, 1],
  async run(ctx, v, [vm]) {
    const until: WaitConditionInput[] = [
      ...list(v, 'console').map((console) => ({ console })),
      ...(flag(v, 'agent') ? [{ agent: true as const }] : []),
      ...(flag(v, 'ip') ? [{ ip: true as const }] : []),
      ...list(v, 'port').map((p) => ({ port: portNumber(p) })),
      ...list(v, 'file').map((file) => ({ file })),
      ...list(v, 'command').map((command) => ({ command })),
      ...list(v, 'state').map((state) => ({ state: state as Extract<WaitConditionInput, { state: unknown }>['state'] })),
      ...list(v, 'event').map((event) => ({ event })),
    ];
    if (until.length === 0) throw new UsageError('name at least one condition (--console, --agent, --ip, --port, --file, --command, --state, --event)');
    const timeoutSeconds = seconds(v, 'timeout');
    const r = await ctx.client.waitVm(vm!, { until, mode: flag(v, 'all') ? 'all' : 'any', ...(timeoutSeconds ? { timeoutSeconds } : {}) });
    if (ctx.json) { ctx.out(json(r)); return EXIT.OK; }
    for (const m of r.matched) ctx.out(`${m.kind.padEnd(7)} after ${(m.elapsedMs / 1000).toFixed(1)} s: ${m.evidence}\n`);
    return EXIT.OK;
  },
};

function portNumber(p: string): number {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--port must be 1–65535 (got '${p}')`);
  return n;
}

export const fork: Command = {
  name: 'fork',
  synopsis: ['fork VM [-n N] [--name NAME]... [--keep-paused] [--ssh-host-keys] [--agent-timeout S]'],
  summary: 'Fork a running VM into N running copies from its live memory and disk state',
  help: `The VM is paused once for a capture of its RAM, CPU and disk state (disk: copy-on-write layers), then
N new VMs resume from it and run on from that exact point. -n (default 1) is how many; --name (repeat it,
as many as -n) names them (default VM-fork-1, ...). The parent runs on, or stays paused with --keep-paused.
Once a child's guest agent answers it is re-identified: entropy, hostname (its VM name), machine-id, MAC,
a DHCP lease under that MAC, with --ssh-host-keys new SSH host keys, and its host port forwards aimed at
the address the guest then has. --agent-timeout (default 60 s, 0: do not wait)
bounds waiting for each child's agent. Prints each child with its MAC and re-identification.`,
  options: {
    n: { type: 'string', short: 'n' }, name: { type: 'string', multiple: true }, 'keep-paused': { type: 'boolean' },
    'ssh-host-keys': { type: 'boolean' }, 'agent-timeout': { type: 'string' },
  },
  args: [1, 1],
  async run(ctx, v, [vm]) {
    const names = list(v, 'name');
    const count = int(v, 'n', { min: 1 }) ?? (names.length > 0 ? names.length : 1);
    const agentTimeout = str(v, 'agent-timeout');
    const agentTimeoutSeconds = agentTimeout === undefined ? undefined : Number(agentTimeout.replace(/s$/, ''));
    if (agentTimeoutSeconds !== undefined && (!Number.isInteger(agentTimeoutSeconds) || agentTimeoutSeconds < 0 || agentTimeoutSeconds > 600)) {
      throw new UsageError(`--agent-timeout must be whole seconds 0–600 (got '${agentTimeout}')`);
    }
    const r = await ctx.client.forkVm(vm!, {
      count, ...(names.length > 0 ? { names } : {}), ...(flag(v, 'keep-paused') ? { keepParentPaused: true } : {}),
      ...(flag(v, 'ssh-host-keys') ? { regenerateSshHostKeys: true } : {}), ...(agentTimeoutSeconds !== undefined ? { agentTimeoutSeconds } : {}),
    });
    if (ctx.json) { ctx.out(json(r)); return EXIT.OK; }
    const d = r.durations;
    ctx.out(`Forked '${r.parent.name}' (${r.parent.state}) into ${r.children.length}: capture ${d.captureMs} ms, resume ${d.startMs} ms, re-identify ${d.reidentifyMs} ms\n`);
    for (const c of r.children) {
      const steps = c.reidentified ? c.reidentified.map((s) => `${s.item} ${s.status}`).join(', ') : `not re-identified: ${c.reidentifyError}`;
      ctx.out(`  ${c.vm.name.padEnd(24)} ${c.vm.state.padEnd(8)} ${c.mac}  ${steps}\n`);
    }
    return EXIT.OK;
  },
};
