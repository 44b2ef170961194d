import { followEvents, type GroveEvent, type LaunchOutcome, type LaunchVm } from '../../client/index.js';
import { EXIT, UsageError, flag, seconds, str, type Command, type Context, type Values } from '../command.js';
import { json } from '../output.js';
import { pullImage } from './images.js';
import { cloudInitFlags, resourceFlags } from './vm.js';

export const launch: Command = {
  name: 'launch',
  synopsis: ['launch DISTRO [NAME] [--cpu N] [--memory SIZE] [--disk SIZE] [--network user|none] [--port-forward HOST:GUEST[/udp]]...',
    '            [--user NAME] [--hostname NAME] [--package PKG]... [--timezone TZ] [--ssh-key FILE]... [--user-data FILE]',
    '            [--wait-for ssh|agent|none] [--timeout S] [--console] [--autostart]'],
  summary: 'Create a distro VM, download its image if needed, start it and wait until SSH answers',
  help: `DISTRO is a catalog id (grove images lists them). NAME defaults to DISTRO-XXXX (4 random hex digits).
When the image is not local it is pulled first, with a progress bar on a terminal (as grove pull). Then
the VM is created (cloud-init: the user grove, or --user, with passwordless sudo, Grove's SSH key and your
~/.ssh/id_*.pub and each --ssh-key FILE; a free host port forwarded to its port 22), started, and waited
for until its SSH server answers (--wait-for agent: its guest agent; none: only until QEMU runs). On a terminal the last line of
the boot console is shown meanwhile; --console copies the whole boot console to stderr. Prints how to log
in: grove ssh NAME.

--timeout (default 300 s) bounds the wait after the start: exit 124 when it passes (the VM keeps running).
Sizes and the other flags (--autostart too) are as for grove create. --json prints the launch result as JSON (no progress
output; a missing image is then downloaded by the daemon within the same call).`,
  options: {
    cpu: { type: 'string' }, memory: { type: 'string' }, disk: { type: 'string' }, network: { type: 'string' },
    'port-forward': { type: 'string', multiple: true }, user: { type: 'string' }, hostname: { type: 'string' },
    package: { type: 'string', multiple: true }, timezone: { type: 'string' }, 'ssh-key': { type: 'string', multiple: true },
    'user-data': { type: 'string' }, 'wait-for': { type: 'string' }, timeout: { type: 'string' }, console: { type: 'boolean' },
    autostart: { type: 'boolean' },
  },
  args: [1, 2],
  async run(ctx, v, [distro, name]) {
    const body = launchBody(v, distro!, name);
    if (!ctx.json) {
      // Pulled here rather than inside the launch call: the bar shows, and one long request stays well
      // within the client's 300 s limit for an answer.
      const entry = (await ctx.client.listDistros()).find((d) => d.id === distro);
      if (entry && !entry.downloaded) {
        const pulled = await pullImage(ctx, entry.id);
        if (pulled !== EXIT.OK) return pulled;
      }
    }
    const view = new BootView(ctx, body, flag(v, 'console'));
    await view.follow();
    let r: LaunchOutcome;
    try {
      r = await ctx.client.launchVm(body);
    } finally {
      view.stop();
    }
    if (ctx.json) { ctx.out(json(r)); return EXIT.OK; }
    const fwd = r.vm.network.portForwards.find((f) => f.guest === 22 && f.protocol === 'tcp');
    const took = r.ready ? `SSH answered ${secs(r.durations.readyMs ?? 0)} after the start (${r.ready.detail})`
      : r.waited ? `${r.waited.matched.map((m) => m.evidence).join('; ')} ${secs(r.durations.readyMs ?? 0)} after the start`
        : `started (not waited for: --wait-for none)`;
    ctx.out(`Launched '${r.vm.name}' (${r.vm.distro}): ${took}.\n`);
    ctx.out(`Log in:  grove ssh ${r.vm.name}\n`);
    if (fwd && r.vm.cloudInit) ctx.out(`         or ssh -p ${fwd.host} ${r.vm.cloudInit.user}@127.0.0.1 with one of your own keys\n`);
    return EXIT.OK;
  },
};

export function launchBody(v: Values, distro: string, name: string | undefined): LaunchVm {
  const body: LaunchVm = { distro };
  if (name !== undefined) body.name = name;
  Object.assign(body, resourceFlags(v));
  // A distro VM always gets cloud-init; the CLI adds the caller's own public keys to it.
  body.cloudInit = cloudInitFlags({ ...v, 'cloud-init': true })!;
  const waitFor = str(v, 'wait-for');
  if (waitFor !== undefined) {
    if (waitFor !== 'ssh' && waitFor !== 'none' && waitFor !== 'agent') throw new UsageError(`--wait-for must be ssh, agent or none (got '${waitFor}')`);
    body.waitFor = waitFor === 'agent' ? { until: [{ agent: true }] } : waitFor;
  }
  const timeout = seconds(v, 'timeout');
  if (timeout !== undefined) body.timeoutSeconds = Math.ceil(timeout);
  return body;
}

/**
 * What a terminal shows while the daemon creates and boots the VM: one status line with the boot
 * console's latest line (and, with --console, the whole console on stderr). It follows the event stream
 * from before the request, and takes the first VM created from this distro (with this name, when given):
 * only the display depends on that guess.
 */
class BootView {
  private readonly ac = new AbortController();
  private readonly tty = !!process.stdout.isTTY;
  private vmId: string | null = null;
  private vmName = '';
  private drawn = false;
  private pending = '';
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: Context, private readonly body: LaunchVm, private readonly copyConsole: boolean) {}

  async follow(): Promise<void> {
    if (this.ctx.json || (!this.tty && !this.copyConsole)) return;
    let connected!: () => void;
    const ready = new Promise<void>((r) => { connected = r; });
    const events = followEvents(this.ctx.client, { types: 'vm.created,vm.started,console.output', signal: this.ac.signal, onConnected: () => connected() });
    this.loop = (async () => {
      for await (const e of events) this.event(e);
    })().catch(() => undefined);
    // The stream is open before the request goes out, so the VM's first console bytes are not missed.
    await Promise.race([ready, this.loop]);
  }

  stop(): void {
    this.ac.abort();
    if (this.drawn) { this.ctx.out('\r\x1b[K'); this.drawn = false; }
  }

  private event(e: GroveEvent): void {
    const data = e.data as Record<string, unknown>;
    if (e.type === 'vm.created' && this.vmId === null) {
      const vm = data['vm'] as { id: string; name: string; distro: string | null } | undefined;
      if (vm && vm.distro === this.body.distro && (this.body.name === undefined || vm.name === this.body.name)) {
        this.vmId = vm.id;
        this.vmName = vm.name;
        this.status('created');
      }
      return;
    }
    if (e.vmId !== this.vmId || this.vmId === null) return;
    if (e.type === 'vm.started') { this.status('booting…'); return; }
    if (e.type === 'console.output' && typeof data['data'] === 'string') {
      const text = data['data'];
      if (this.copyConsole) {
        if (this.drawn) { this.ctx.out('\r\x1b[K'); this.drawn = false; }
        this.ctx.err(text);
      }
      this.pending = (this.pending + text).slice(-4096);
      const lines = this.pending.split(/\r?\n/).map(plain).filter((l) => l.trim() !== '');
      const last = lines.at(-1);
      if (last !== undefined) this.status(`booting… ${last.trim()}`);
    }
  }

  private status(text: string): void {
    if (!this.tty) return;
    const width = (process.stdout.columns || 80) - 1;
    const line = `${this.vmName}: ${text}`;
    this.ctx.out(`\r${line.length > width ? line.slice(0, width) : line}\x1b[K`);
    this.drawn = true;
  }
}

/** Console text as a terminal status line can hold it: no escape sequences or control characters. */
function plain(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[@-_]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
