import { DomainError } from '../../domain/errors.js';
import type { GroveEvent } from '../../domain/events.js';
import { matchesFilter } from '../../domain/events.js';
import type { Vm } from '../../domain/vm.js';
import { checkConditions, describeCondition, kindOf, WAIT_LIMITS, type WaitCondition, type WaitKind, type WaitMode } from '../../domain/wait.js';
import type { EventFeed } from '../../ports/event-sink.js';
import type { TcpGreeting } from '../../ports/guest-network.js';
import { errorMessage } from '../../util/errors.js';
import type { AgentService } from '../agent/agent-service.js';
import type { ConsoleService } from '../console/console-service.js';
import { compileWaitPattern } from '../console/wait-pattern.js';
import type { StartResult, VmService } from '../vm-service.js';
import { commandSucceeds, fileExists, portListening, type CheckOutcome } from './guest-checks.js';

export interface WaitRequest {
  until: WaitCondition[];
  mode?: WaitMode;
  timeoutSeconds?: number;
}

export interface WaitMatch {
  /** Position in `until`. */
  index: number;
  kind: WaitKind;
  condition: WaitCondition;
  at: string;
  /** From the start of the wait. */
  elapsedMs: number;
  /** What showed it: the console text matched, the address, the listening socket, the event id, … */
  evidence: string;
}

export interface WaitOutcome {
  mode: WaitMode;
  elapsedMs: number;
  /** `any`: the one that matched first; `all`: every condition, in the order they were met. */
  matched: WaitMatch[];
}

/** Conditions only a running guest can meet; the others (state, event) may still come true after it stopped. */
const GUEST_KINDS = new Set<WaitKind>(['console', 'agent', 'ip', 'port', 'file', 'command']);
const LIVE_STATES = new Set(['starting', 'running', 'paused']);
const ENDING_EVENTS = new Set(['vm.stopped', 'vm.error', 'vm.deleted', 'vm.suspended']);
/** Agent-side checks are retried with this back-off (and at once when the agent connects). */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 2000;
/** A command condition re-runs less eagerly: it may be heavy. */
const COMMAND_RETRY_MAX_MS = 5000;
const COMMAND_RUN_MAX_MS = 30_000;
/** A probe through a forwarded port: how long to wait for the service's first bytes. */
const GREETING_MS = 1500;
/** Without an agent a check waits for its connect event; this only bounds a missed one. */
const NO_AGENT_PAUSE_MS = 5000;

export interface WaitServiceDeps {
  vms: VmService;
  console: ConsoleService;
  agents: AgentService;
  feed: EventFeed;
  greeting: TcpGreeting;
}

/**
 * One server-side wait for any readiness condition. Each condition is watched by what can tell it: the
 * console stream, the event bus (state, event, agent connection), the guest agent (ip, port, file,
 * command: retried with back-off, and at once when the agent connects). Nothing is kept but the
 * console's bounded match window; the wait never outlives its timeout, and a VM that goes away ends it
 * at once with the reason, unless a pending condition can still be met without a guest.
 */
export class WaitService {
  constructor(private readonly d: WaitServiceDeps) {}

  /** Validates a request before anything else happens (start and launch call this before they act). */
  check(req: WaitRequest): void {
    checkConditions(req.until);
    for (const [i, c] of req.until.entries()) {
      if ('console' in c) compileWaitPattern(c.console);
      if ('port' in c && (!Number.isInteger(c.port) || c.port < 1 || c.port > 65535)) {
        throw new DomainError('VALIDATION_FAILED', `until[${i}]: port must be 1–65535`, { field: `until[${i}].port` });
      }
    }
  }

  /** `consoleFrom`: where "console output from now on" begins (a start passes the offset before it booted). */
  async wait(ref: string, req: WaitRequest, consoleFrom?: number): Promise<WaitOutcome> {
    const vm = this.d.vms.get(ref);
    this.check(req);
    const mode = req.mode ?? 'any';
    const timeoutMs = (req.timeoutSeconds ?? WAIT_LIMITS.defaultTimeoutSeconds) * 1000;
    return new WaitRun(this.d, vm, req.until, mode, timeoutMs).run(consoleFrom);
  }

  /**
   * Start with `waitFor: { until }`: the same conditions as a wait, checked before anything starts, and
   * console conditions matched from the first byte of this boot.
   */
  async start(ref: string, req: WaitRequest): Promise<StartResult & { waited: WaitOutcome }> {
    const { id } = this.d.vms.get(ref);
    this.check(req);
    const from = await this.d.console.end(id);
    await this.d.vms.start(id);
    const waited = await this.wait(id, req, from);
    return { vm: this.d.vms.get(id), waited };
  }
}

class WaitRun {
  private readonly started = performance.now();
  private readonly abort = new AbortController();
  private readonly matched: WaitMatch[] = [];
  private readonly pending: Set<number>;
  private readonly lastReason = new Map<number, string>();
  /** Woken on every event of this VM, so watchers re-check at once instead of waiting out a back-off. */
  private readonly nudges = new Set<() => void>();
  private settle: ((r: WaitOutcome | Error) => void) | null = null;
  /** Console offset at the start: "from now" means from here, even if the console watcher starts later. */
  private consoleStart = 0;

  constructor(
    private readonly d: WaitServiceDeps,
    private readonly vm: Vm,
    private readonly until: WaitCondition[],
    private readonly mode: WaitMode,
    private readonly timeoutMs: number,
  ) {
    this.pending = new Set(until.map((_, i) => i));
  }

  async run(consoleFrom?: number): Promise<WaitOutcome> {
    this.consoleStart = consoleFrom ?? await this.d.console.end(this.vm.id);
    const vmNow = this.d.vms.get(this.vm.id);
    const sub = this.d.feed.subscribe({ types: [], vmId: this.vm.id }, (e) => this.onEvent(e));
    try {
      return await new Promise<WaitOutcome>((resolve, reject) => {
        const timer = setTimeout(() => this.fail(this.timeoutError()), this.timeoutMs);
        this.settle = (r) => {
          this.settle = null;
          clearTimeout(timer);
          this.abort.abort();
          for (const n of this.nudges) n();
          if (r instanceof Error) reject(r); else resolve(r);
        };
        if (!LIVE_STATES.has(vmNow.state) && this.guestGone()) {
          this.fail(new DomainError('INVALID_STATE', `VM '${vmNow.name}' is ${vmNow.state}: ${this.guestNeeded()} needs it running`, { state: vmNow.state, allowedStates: ['running'] }));
          return;
        }
        for (const [i, c] of this.until.entries()) {
          this.watch(i, c).catch((e: unknown) => this.fail(e instanceof Error ? e : new Error(String(e))));
        }
      });
    } finally {
      sub.close();
    }
  }

  // ---- outcome -------------------------------------------------------------------------------

  private met(index: number, evidence: string): void {
    if (!this.settle || !this.pending.has(index)) return;
    this.pending.delete(index);
    const c = this.until[index]!;
    const elapsedMs = Math.round(performance.now() - this.started);
    this.matched.push({ index, kind: kindOf(c), condition: c, at: new Date().toISOString(), elapsedMs, evidence });
    if (this.mode === 'any' || this.pending.size === 0) this.settle({ mode: this.mode, elapsedMs, matched: this.matched });
  }

  private fail(e: Error): void {
    this.settle?.(e);
  }

  private get done(): boolean {
    return this.settle === null;
  }

  private timeoutError(): DomainError {
    const pending = [...this.pending].map((i) => {
      const why = this.lastReason.get(i);
      return `${describeCondition(this.until[i]!)}${why ? ` (last: ${why})` : ''}`;
    });
    return new DomainError('TIMEOUT', `VM '${this.vm.name}': not met within ${this.timeoutMs / 1000} s: ${pending.join('; ')}`,
      { pending: [...this.pending], matched: this.matched.map((m) => m.index) });
  }

  /** Whether the guest going away decides the wait: what is still pending cannot come true without it. */
  private guestGone(): boolean {
    const guestPending = [...this.pending].filter((i) => GUEST_KINDS.has(kindOf(this.until[i]!)));
    return this.mode === 'all' ? guestPending.length > 0 : guestPending.length === this.pending.size;
  }

  private guestNeeded(): string {
    return [...this.pending].filter((i) => GUEST_KINDS.has(kindOf(this.until[i]!))).map((i) => describeCondition(this.until[i]!)).join(', ');
  }

  // ---- events --------------------------------------------------------------------------------

  private onEvent(e: GroveEvent): void {
    if (this.done) return;
    for (const [i, c] of this.until.entries()) {
      if (!this.pending.has(i)) continue;
      if ('event' in c && matchesFilter(e, { types: [c.event] })) this.met(i, `event #${e.id} ${e.type} at ${e.timestamp}`);
      else if ('state' in c && this.current()?.state === c.state) this.met(i, `state ${c.state} (event #${e.id} ${e.type})`);
      else if ('agent' in c && e.type === 'agent.connected') this.met(i, agentEvidence(e));
    }
    if (!this.done && ENDING_EVENTS.has(e.type) && this.guestGone()) {
      const reason = typeof e.data['reason'] === 'string' ? `: ${e.data['reason']}` : '';
      const vm = this.current();
      const detail = vm?.lastError ? ` (${vm.lastError})` : '';
      this.fail(new DomainError('INVALID_STATE', `VM '${this.vm.name}' ${e.type.slice(3)}${reason}${detail} while waiting for ${this.guestNeeded()}`,
        { state: vm?.state ?? 'deleted', event: e.type }));
    }
    for (const n of [...this.nudges]) n();
  }

  /** Sleeps up to `ms`, or less when an event of this VM arrives or the wait ends. */
  private pause(ms: number): Promise<void> {
    if (this.done) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => { clearTimeout(t); this.nudges.delete(wake); resolve(); };
      const t = setTimeout(wake, ms);
      this.nudges.add(wake);
    });
  }

  // ---- watchers ------------------------------------------------------------------------------

  private async watch(i: number, c: WaitCondition): Promise<void> {
    if ('state' in c) {
      const now = this.d.vms.get(this.vm.id).state;
      if (now === c.state) this.met(i, `state ${now}`);
      return; // then on events
    }
    if ('event' in c) return; // events from now on only
    if ('agent' in c) {
      const s = this.d.agents.status(this.d.vms.get(this.vm.id));
      if (s?.connected) this.met(i, `agent ${s.version ?? ''} answering${s.os ? ` (${s.os})` : ''}`.replace('  ', ' '));
      return; // then on agent.connected
    }
    if ('console' in c) return this.watchConsole(i, c.console, c.since);
    if ('ip' in c) return this.retry(i, RETRY_MAX_MS, true, async () => {
      const r = await this.d.agents.ip(this.vm.id);
      return r.ip ? { ok: true, evidence: r.ip } : { ok: false, reason: 'no global address yet' };
    });
    if ('port' in c) return this.retry(i, RETRY_MAX_MS, false, () => this.portOpen(c.port));
    if ('file' in c) return this.retry(i, RETRY_MAX_MS, true, () => this.d.agents.use(this.vm.id, `checking ${c.file}`, (a) => fileExists(a, c.file)));
    const command = c.command;
    return this.retry(i, COMMAND_RETRY_MAX_MS, true, () => this.d.agents.use(this.vm.id, `running '${command}'`,
      (a) => commandSucceeds(a, command, Math.max(1, Math.min(COMMAND_RUN_MAX_MS, this.left())))));
  }

  private current(): Vm | null {
    try {
      return this.d.vms.get(this.vm.id);
    } catch {
      return null; // deleted
    }
  }

  private left(): number {
    return this.timeoutMs - (performance.now() - this.started);
  }

  /**
   * Attempts a guest-side check until it holds. One that needs the agent is attempted only while the
   * agent answers: before that it waits for the agent.connected event (which wakes it), not a timer.
   */
  private async retry(i: number, maxPauseMs: number, needsAgent: boolean, attempt: () => Promise<CheckOutcome>): Promise<void> {
    let pause = RETRY_FIRST_MS;
    while (!this.done) {
      const vm = this.current();
      if (vm?.state === 'running' && needsAgent && !this.d.agents.status(vm)?.connected) {
        this.lastReason.set(i, 'the guest agent does not answer yet');
        await this.pause(NO_AGENT_PAUSE_MS);
        continue;
      }
      if (vm?.state === 'running') {
        try {
          const r = await attempt();
          if (r.ok) { this.met(i, r.evidence); return; }
          this.lastReason.set(i, r.reason);
        } catch (e) {
          this.lastReason.set(i, errorMessage(e));
        }
      } else {
        this.lastReason.set(i, `VM is ${vm?.state ?? 'gone'}`);
      }
      await this.pause(pause);
      pause = Math.min(maxPauseMs, pause * 2);
    }
  }

  /** Through the agent when it answers; otherwise through a forwarded host port, by the service's first bytes. */
  private async portOpen(port: number): Promise<CheckOutcome> {
    const vm = this.d.vms.get(this.vm.id);
    const fwd = vm.network.portForwards.find((f) => f.guest === port && f.protocol === 'tcp');
    if (this.d.agents.status(vm)?.connected || !fwd) {
      return this.d.agents.use(vm.id, `checking port ${port}`, (a) => portListening(a, port));
    }
    try {
      const line = await this.d.greeting.firstLine('127.0.0.1', fwd.host, GREETING_MS);
      return { ok: true, evidence: `forwarded port ${fwd.host} answered: ${JSON.stringify(line.slice(0, 100))}` };
    } catch (e) {
      return { ok: false, reason: `forwarded port ${fwd.host}: ${errorMessage(e)}` };
    }
  }

  private async watchConsole(i: number, pattern: string, since: number | undefined): Promise<void> {
    // A VM still starting has no console yet: its output is matched from where it will begin.
    while (!this.done && !this.d.console.isAttached(this.vm.id)) await this.pause(RETRY_MAX_MS);
    if (this.done) return;
    try {
      const r = await this.d.console.waitFor(this.d.vms.get(this.vm.id), pattern, since ?? this.consoleStart, Math.max(1, this.left()), this.abort.signal);
      this.met(i, `${JSON.stringify(r.matched)} at console offset ${r.offset}`);
    } catch (e) {
      // Timeouts and stops are this wait's own to report (with every condition's state).
      if (this.done || (e instanceof DomainError && (e.code === 'TIMEOUT' || e.code === 'INVALID_STATE'))) return;
      throw e;
    }
  }
}

function agentEvidence(e: GroveEvent): string {
  const a = e.data['agent'] as { version?: string | null; os?: string | null } | undefined;
  return `agent ${a?.version ?? ''} connected (event #${e.id})${a?.os ? `, ${a.os}` : ''}`;
}

