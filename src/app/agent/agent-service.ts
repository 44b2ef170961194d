import { errorMessage } from '../../util/errors.js';
import { DomainError, type ErrorCode } from '../../domain/errors.js';
import type { GroveEvent } from '../../domain/events.js';
import { assertCan, isLive, isUp } from '../../domain/vm-state.js';
import type { Vm } from '../../domain/vm.js';
import type { EventFeed, EventSink } from '../../ports/event-sink.js';
import { GuestAgentUnavailableError, GuestCommandError, type GuestAgent, type GuestAgentConnector, type GuestInterface, type GuestOsInfo } from '../../ports/guest-agent.js';
import type { Logger } from '../../ports/logger.js';
import type { DataLayout } from '../layout.js';
import type { VmService } from '../vm-service.js';
import type { Quiescer } from './quiesce.js';

/** What the VM details say about the agent (null while the VM is not running or paused). */
export interface AgentStatus {
  connected: boolean;
  version: string | null;
  os: string | null;
}

export type VmDetails = Vm & { agent: AgentStatus | null };

export interface AgentServiceOptions {
  /** Between pings while the agent answers. */
  pingIntervalMs: number;
  /** Between attempts while it does not (each attempt itself waits for the handshake timeout). */
  retryMs: number;
}

export const AGENT_DEFAULTS: AgentServiceOptions = { pingIntervalMs: 5_000, retryMs: 1_000 };

/** How long a freeze may take before the copy goes ahead without it (qemu-ga syncs every filesystem first). */
const FREEZE_LIMIT_MS = 10_000;
/** Thaw attempts before giving up (each waits for the agent's answer). */
const THAW_ATTEMPTS = 3;

export interface AgentServiceDeps {
  vms: VmService;
  layout: DataLayout;
  connector: GuestAgentConnector;
  events: EventSink;
  feed: EventFeed;
  log: Logger;
  options?: Partial<AgentServiceOptions>;
}

interface Session {
  vmId: string;
  agent: GuestAgent;
  status: AgentStatus;
  timer: NodeJS.Timeout | null;
  ended: boolean;
  /** A watch round is running (a ping, or fetching version and OS after a connect). */
  busy: boolean;
}

const ENDING_EVENTS = new Set(['vm.stopped', 'vm.error', 'vm.suspended', 'vm.deleted']);

/**
 * The guest agent of every running VM: one client per VM (its requests run one at a time), a watcher
 * that pings it (and learns its version and OS when it comes), the `agent.connected` /
 * `agent.disconnected` events, and the one place agent failures become domain errors. It follows the
 * lifecycle through events (a VM that starts gets a watcher, one that stops loses it); the lifecycle asks
 * it for one thing only, through a hook: guest-shutdown when a stop's ACPI press goes unheard.
 */
export class AgentService implements Quiescer {
  private readonly sessions = new Map<string, Session>();
  private readonly opts: AgentServiceOptions;
  private subscription: { close(): void } | null = null;
  private generation = 0;
  private listed: { source: readonly Vm[]; generation: number; list: readonly VmDetails[]; byRecord: Map<Vm, VmDetails> } | null = null;

  constructor(private readonly d: AgentServiceDeps) {
    this.opts = { ...AGENT_DEFAULTS, ...d.options };
  }

  /** Watches the VMs that run now (re-adopted ones included) and every one that starts later. */
  start(): void {
    this.subscription = this.d.feed.subscribe({ types: ['vm.*'] }, (e) => this.onEvent(e));
    for (const vm of this.d.vms.list()) if (isUp(vm.state)) this.watch(vm.id);
  }

  /** Daemon shutdown: lets go of every agent channel (the guests keep running). */
  async close(): Promise<void> {
    this.subscription?.close();
    this.subscription = null;
    await Promise.all([...this.sessions.keys()].map((id) => this.end(id, null)));
  }

  // ---- status ---------------------------------------------------------------------------------

  status(vm: Vm): AgentStatus | null {
    if (!isUp(vm.state)) return null;
    return { ...(this.sessions.get(vm.id)?.status ?? { connected: false, version: null, os: null }) };
  }

  /** The VM by id or name (VM_NOT_FOUND otherwise). */
  find(ref: string): Vm {
    return this.d.vms.get(ref);
  }

  /** One VM with its agent status: the same object as in list() while neither changes (faces cache its JSON). */
  details(ref: string): VmDetails {
    const vm = this.d.vms.get(ref);
    return this.current().byRecord.get(vm) ?? { ...vm, agent: this.status(vm) };
  }

  /** Every VM with its agent status; the same array until a VM or an agent changes (faces cache its JSON). */
  list(): readonly VmDetails[] {
    return this.current().list;
  }

  private current(): NonNullable<AgentService['listed']> {
    const source = this.d.vms.list();
    if (this.listed?.source !== source || this.listed.generation !== this.generation) {
      const list = source.map((vm) => ({ ...vm, agent: this.status(vm) }));
      this.listed = { source, generation: this.generation, list, byRecord: new Map(source.map((vm, i) => [vm, list[i]!])) };
    }
    return this.listed;
  }

  // ---- use ------------------------------------------------------------------------------------

  /**
   * Runs `fn` against the agent of a running VM. Failures become domain errors: no answer is 409
   * GUEST_AGENT_UNAVAILABLE (or INVALID_STATE when the VM stopped meanwhile); an error the agent
   * reports is mapped by its errno (`what` names the operation in the message).
   */
  async use<T>(ref: string, what: string, fn: (agent: GuestAgent, vm: Vm) => Promise<T>): Promise<T> {
    const vm = this.d.vms.get(ref);
    assertCan('guestAgent', vm.state, vm.name);
    const session = this.sessions.get(vm.id) ?? this.watch(vm.id);
    try {
      return await fn(session.agent, vm);
    } catch (e) {
      throw this.failure(e, vm, what, session);
    }
  }

  private failure(e: unknown, vm: Vm, what: string, session: Session): unknown {
    if (e instanceof GuestAgentUnavailableError) {
      const now = this.d.vms.get(vm.id);
      if (now.state !== 'running') {
        return new DomainError('INVALID_STATE', `VM '${vm.name}' is ${now.state}: ${what} needs it running`, { state: now.state, allowedStates: ['running'] });
      }
      // Let the watcher find out at once whether this is the agent gone or one slow answer.
      this.schedule(session, 0);
      return new DomainError('GUEST_AGENT_UNAVAILABLE', `the guest agent of VM '${vm.name}' does not answer (${e.message}); is qemu-guest-agent installed and running in the guest?`, { vm: vm.name });
    }
    if (e instanceof GuestCommandError) return commandFailure(e, what);
    return e;
  }

  /** Guest addresses from the agent, with the host ports forwarded into the guest. */
  async ip(ref: string): Promise<{ ip: string | null; interfaces: GuestInterface[]; portForwards: Vm['network']['portForwards'] }> {
    return this.use(ref, 'reading the guest addresses', async (agent, vm) => {
      const interfaces = await agent.interfaces();
      return { ip: primaryAddress(interfaces), interfaces, portForwards: vm.network.portForwards };
    });
  }

  async osInfo(ref: string): Promise<{ hostname: string; agentVersion: string; os: GuestOsInfo }> {
    return this.use(ref, 'reading the guest OS facts', async (agent) => {
      const os = await agent.osInfo();
      const hostname = await agent.hostName();
      const { version } = await agent.info();
      return { hostname, agentVersion: version, os };
    });
  }

  /** Asks the guest OS to power off through its agent, if one is known to answer. */
  async requestShutdown(vmId: string): Promise<boolean> {
    const s = this.sessions.get(vmId);
    if (!s?.status.connected) return false;
    try {
      await s.agent.shutdown();
      return true;
    } catch (e) {
      this.d.log.warn({ vm: vmId, err: errorMessage(e) }, 'guest-shutdown through the agent failed');
      return false;
    }
  }

  // ---- quiescing ------------------------------------------------------------------------------

  async quiesced<T>(vmId: string, fn: () => Promise<T>): Promise<{ result: T; frozen: boolean }> {
    const s = this.sessions.get(vmId);
    const vm = this.d.vms.get(vmId);
    // Only an agent known to answer is asked: a guest without one must not make every copy wait.
    if (!s || !s.status.connected || vm.state !== 'running') return { result: await fn(), frozen: false };
    let frozen = false;
    try {
      frozen = (await withLimit(s.agent.freezeFilesystems(), FREEZE_LIMIT_MS, 'the freeze')) > 0;
    } catch (e) {
      this.d.log.warn({ vm: vm.name, err: errorMessage(e) }, 'guest filesystems could not be frozen; copying the disk as it is');
    }
    try {
      return { result: await fn(), frozen };
    } finally {
      // Also after a failed or late freeze: part of it may have happened, and the agent runs requests in order.
      await this.thaw(s, vm);
    }
  }

  private async thaw(s: Session, vm: Vm): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await s.agent.thawFilesystems();
        return;
      } catch (e) {
        // An error the agent reports is its last word on it; silence is tried again.
        if (e instanceof GuestCommandError || attempt >= THAW_ATTEMPTS) {
          this.d.log.error({ vm: vm.name, err: errorMessage(e) }, 'thawing the guest filesystems failed: they may still be frozen');
          return;
        }
      }
    }
  }

  // ---- watcher --------------------------------------------------------------------------------

  private onEvent(e: GroveEvent): void {
    // Events arrive inside the transaction that records them; agent events of our own follow after it.
    setImmediate(() => this.react(e));
  }

  private react(e: GroveEvent): void {
    if (!e.vmId || this.subscription === null) return;
    if (e.type === 'vm.started') this.watch(e.vmId);
    else if (e.type === 'vm.resumed') { const s = this.sessions.get(e.vmId); if (s) this.schedule(s, 0); }
    else if (ENDING_EVENTS.has(e.type)) this.end(e.vmId, 'vm stopped').catch((err: unknown) => this.d.log.warn({ vm: e.vmId, err: errorMessage(err) }, 'ending the agent session failed'));
  }

  private watch(vmId: string): Session {
    const existing = this.sessions.get(vmId);
    if (existing) return existing;
    const session: Session = {
      vmId, agent: this.d.connector.open(this.d.layout.vmPaths(vmId).guestAgentSocket),
      status: { connected: false, version: null, os: null }, timer: null, ended: false, busy: false,
    };
    this.sessions.set(vmId, session);
    this.schedule(session, 0);
    return session;
  }

  private schedule(s: Session, ms: number): void {
    if (s.ended || s.busy) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = null;
      this.round(s).catch((err: unknown) => this.d.log.warn({ vm: s.vmId, err: errorMessage(err) }, 'agent check failed'));
    }, ms);
    s.timer.unref();
  }

  private async round(s: Session): Promise<void> {
    if (s.ended || s.busy) return;
    const vm = this.d.vms.list().find((v) => v.id === s.vmId);
    if (!vm || !isLive(vm.state)) { await this.end(s.vmId, 'vm stopped'); return; }
    // A paused guest cannot answer, nor can one in the middle of a stop or a suspend (whose stop may still
    // ask its agent): it is asked again once it runs.
    if (vm.state !== 'running') { this.schedule(s, this.opts.pingIntervalMs); return; }
    s.busy = true;
    let next = this.opts.pingIntervalMs;
    try {
      await s.agent.ping();
      if (!s.status.connected) {
        const [{ version }, os] = await Promise.all([s.agent.info(), s.agent.osInfo()]);
        if (!s.ended) this.setStatus(s, vm, { connected: true, version, os: describeOs(os) }, 'agent.connected', {});
      }
    } catch (e) {
      next = this.opts.retryMs;
      if (s.status.connected && !s.ended) {
        this.setStatus(s, vm, { ...s.status, connected: false }, 'agent.disconnected', { reason: errorMessage(e) });
      }
    } finally {
      s.busy = false;
    }
    this.schedule(s, next);
  }

  private async end(vmId: string, reason: string | null): Promise<void> {
    const s = this.sessions.get(vmId);
    if (!s) return;
    this.sessions.delete(vmId);
    s.ended = true;
    if (s.timer) clearTimeout(s.timer);
    if (s.status.connected && reason !== null) {
      const vm = this.d.vms.list().find((v) => v.id === vmId);
      if (vm) this.publish('agent.disconnected', vm, { ...s.status, connected: false }, { reason });
    }
    this.generation++;
    await s.agent.close().catch((e: unknown) => this.d.log.warn({ vm: vmId, err: errorMessage(e) }, 'closing the guest agent channel failed'));
  }

  private setStatus(s: Session, vm: Vm, status: AgentStatus, type: 'agent.connected' | 'agent.disconnected', data: Record<string, unknown>): void {
    s.status = status;
    this.generation++;
    this.publish(type, vm, status, data);
  }

  private publish(type: 'agent.connected' | 'agent.disconnected', vm: Vm, status: AgentStatus, data: Record<string, unknown>): void {
    this.d.events.publish({ type, vmId: vm.id, vmName: vm.name, data: { agent: status, ...data } });
  }
}

function describeOs(os: GuestOsInfo): string | null {
  return os.prettyName ?? ([os.name, os.version].filter(Boolean).join(' ') || null);
}

/** The first global IPv4 address (what a user means by "the VM's IP"), else the first global IPv6 one. */
export function primaryAddress(interfaces: GuestInterface[]): string | null {
  const all = interfaces.filter((i) => i.name !== 'lo').flatMap((i) => i.addresses);
  const v4 = all.find((a) => a.family === 'ipv4' && !a.address.startsWith('127.') && !a.address.startsWith('169.254.'));
  if (v4) return v4.address;
  return all.find((a) => a.family === 'ipv6' && !/^(fe80:|::1$)/i.test(a.address))?.address ?? null;
}

const ERRNO_CODES: Record<string, [ErrorCode, string]> = {
  ENOENT: ['NOT_FOUND', 'no such file or directory'],
  EEXIST: ['CONFLICT', 'already exists'],
  EACCES: ['FORBIDDEN', 'permission denied'],
  EPERM: ['FORBIDDEN', 'operation not permitted'],
  EISDIR: ['VALIDATION_FAILED', 'is a directory'],
  ENOTDIR: ['VALIDATION_FAILED', 'not a directory'],
  ENOTEMPTY: ['CONFLICT', 'directory not empty'],
  ENOSPC: ['INSUFFICIENT_STORAGE', 'no space left in the guest'],
  EDQUOT: ['INSUFFICIENT_STORAGE', 'disk quota exceeded in the guest'],
};

/** An error the agent reported, by its errno; anything else is the guest failing the request. */
export function commandFailure(e: GuestCommandError, what: string): DomainError {
  const known = e.errno ? ERRNO_CODES[e.errno] : undefined;
  if (known) return new DomainError(known[0], `${what}: ${known[1]} (guest agent: ${e.desc})`, { errno: e.errno });
  return new DomainError('GUEST_COMMAND_FAILED', `${what} failed in the guest: ${e.desc}`, e.errno ? { errno: e.errno } : {});
}

function withLimit<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
