import { errorMessage } from '../../util/errors.js';
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { DomainError } from '../../domain/errors.js';
import { assertCan } from '../../domain/vm-state.js';
import type { Vm } from '../../domain/vm.js';
import type { ConsoleLogReader, SerialLink, VmPaths } from '../../ports/hypervisor.js';
import type { EventSink } from '../../ports/event-sink.js';
import type { VmRepo } from '../../ports/repos.js';
import { ConsoleBuffer } from './console-buffer.js';
import { frameCommand, parseExecuteOutput } from './execute-protocol.js';
import { stripAnsi } from './ansi.js';
import { keysToBytes } from './keys.js';
import { compileWaitPattern, type WaitPattern } from './wait-pattern.js';
import { wholeCharacters } from './utf8.js';

export const CONSOLE_BUFFER_BYTES = 1024 * 1024;
export const CONSOLE_READ_MAX = 1024 * 1024;
/** Console history kept per VM unless the daemon is configured otherwise. */
export const CONSOLE_HISTORY_DEFAULT_BYTES = 64 * 1024 * 1024;
/** History is searched in slices this size: memory stays bounded however much output there is. */
const HISTORY_SCAN_BYTES = 256 * 1024;
const EVENT_FLUSH_MS = 100;
const EVENT_MAX_BYTES = 16 * 1024;
const MATCH_WINDOW = 64 * 1024;

export interface ConsoleRead {
  data: string;
  offset: number;
  nextOffset: number;
  truncated: boolean;
  historyStart: number;
}

export interface ExecuteResult {
  output: string;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
}

export interface WaitResult {
  matched: string;
  offset: number;
  elapsedMs: number;
}

type Listener = (chunk: Buffer, offset: number) => void;

/** Live console state of one running VM. */
class Attached {
  readonly buffer: ConsoleBuffer;
  readonly listeners = new Set<Listener>();
  pendingEvent: { offset: number; text: string; bytes: number } | null = null;
  flushTimer: NodeJS.Timeout | null = null;
  readonly decoder = new StringDecoder('utf8');
  /** Serializes execute calls: two commands typed at once would interleave on one shell. */
  executing: Promise<unknown> = Promise.resolve();
  unsubscribe: () => void = () => undefined;
  /** Oldest offset known to be kept (0 until first learnt); a trim in flight, at most one. */
  historyStart = 0;
  trimming = false;

  constructor(readonly vm: Pick<Vm, 'id' | 'name'>, readonly link: SerialLink) {
    this.buffer = new ConsoleBuffer(CONSOLE_BUFFER_BYTES, link.offset);
  }
}

export class ConsoleService {
  private readonly attached = new Map<string, Attached>();

  constructor(
    private readonly deps: {
      vms: VmRepo; events: EventSink; log: ConsoleLogReader; paths: (id: string) => VmPaths;
      /** Console history kept per VM; older output is let go (offsets stay absolute). */
      historyBytes?: number;
      onTrimError?: (vmId: string, error: unknown) => void;
      /** Where a console.output event that could not be stored is reported (a full disk: SQLITE_FULL). */
      warn?: (fields: Record<string, unknown>, msg: string) => void;
    },
  ) {}

  private get historyBytes(): number {
    return this.deps.historyBytes ?? CONSOLE_HISTORY_DEFAULT_BYTES;
  }

  attach(vm: Pick<Vm, 'id' | 'name'>, link: SerialLink): void {
    this.detach(vm.id);
    const a = new Attached(vm, link);
    a.unsubscribe = link.onData((chunk, offset) => {
      a.buffer.append(chunk, offset);
      for (const l of a.listeners) l(chunk, offset);
      this.queueEvent(a, chunk, offset);
      this.keepHistoryBounded(a);
    });
    this.attached.set(vm.id, a);
    this.keepHistoryBounded(a);
  }

  /**
   * Lets the oldest output go once the history exceeds its cap by a slack (so trimming runs every few
   * MiB, not on every chunk). Only running VMs write, so this is the one place history grows.
   */
  private keepHistoryBounded(a: Attached): void {
    const cap = this.historyBytes;
    const slack = Math.max(64 * 1024, Math.floor(cap / 16));
    if (a.trimming || a.buffer.end - a.historyStart <= cap + slack) return;
    a.trimming = true;
    this.deps.log.trim(this.deps.paths(a.vm.id), a.buffer.end - cap)
      .then((start) => { a.historyStart = start; })
      .catch((e: unknown) => this.deps.onTrimError?.(a.vm.id, e))
      .finally(() => { a.trimming = false; });
  }

  /** The oldest console offset still kept: output before it has been let go under the history cap. */
  async historyStart(vmId: string): Promise<number> {
    return this.deps.log.start(this.deps.paths(vmId));
  }

  detach(vmId: string): void {
    const a = this.attached.get(vmId);
    if (!a) return;
    a.unsubscribe();
    this.flushEvent(a);
    this.attached.delete(vmId);
  }

  isAttached(vmId: string): boolean {
    return this.attached.has(vmId);
  }

  /** Log offset where the next output will appear. */
  async end(vmId: string): Promise<number> {
    return this.attached.get(vmId)?.buffer.end ?? this.deps.log.size(this.deps.paths(vmId));
  }

  /**
   * Coalesces output into one event per VM per 100 ms (or 16 KiB), so a chatty guest costs a handful
   * of persisted events per second instead of one per byte.
   */
  private queueEvent(a: Attached, chunk: Buffer, offset: number): void {
    const text = a.decoder.write(chunk);
    if (!a.pendingEvent) a.pendingEvent = { offset, text: '', bytes: 0 };
    a.pendingEvent.text += text;
    a.pendingEvent.bytes += chunk.length;
    if (a.pendingEvent.bytes >= EVENT_MAX_BYTES) this.flushEvent(a);
    else if (!a.flushTimer) a.flushTimer = setTimeout(() => this.flushEvent(a), EVENT_FLUSH_MS);
  }

  private flushEvent(a: Attached): void {
    if (a.flushTimer) { clearTimeout(a.flushTimer); a.flushTimer = null; }
    const p = a.pendingEvent;
    a.pendingEvent = null;
    if (!p || p.bytes === 0) return;
    // The name is looked up now, not at attach time: the VM may have been renamed while running.
    const vmName = this.deps.vms.get(a.vm.id)?.name ?? a.vm.name;
    // Called from the serial link's data handler and a timer: a throw here would end the daemon. The bytes
    // stay in the console history; only their event is lost.
    try {
      this.deps.events.publish({
        type: 'console.output', vmId: a.vm.id, vmName,
        data: { offset: p.offset, nextOffset: p.offset + p.bytes, data: p.text },
      });
    } catch (e) {
      this.deps.warn?.({ vm: a.vm.name, err: errorMessage(e) }, 'a console.output event could not be stored');
    }
  }

  /**
   * Without `since`: the latest `limit` bytes since the last clear (`truncated`: older output skipped).
   * With `since`: from there on (`truncated`: newer output remains). Pages end on character boundaries.
   */
  async read(vm: Vm, opts: { since?: number; limit: number; stripAnsi: boolean }): Promise<ConsoleRead> {
    const limit = Math.min(opts.limit, CONSOLE_READ_MAX);
    const historyStart = await this.historyStart(vm.id);
    // A read from before what is kept starts where the kept history does; `offset` says so.
    const clearOffset = Math.max(historyStart, this.deps.vms.consoleClearOffset(vm.id));
    const end = await this.end(vm.id);
    const tail = opts.since === undefined;
    const from = Math.min(end, tail ? Math.max(clearOffset, end - limit) : Math.max(opts.since!, clearOffset));
    const raw = await this.readRange(vm.id, from, Math.min(end, from + limit));
    const whole = wholeCharacters(raw);
    const bytes = raw.subarray(whole.start, whole.end);
    const offset = from + whole.start;
    const nextOffset = offset + bytes.length;
    const data = bytes.toString('utf8');
    return {
      data: opts.stripAnsi ? stripAnsi(data) : data,
      offset,
      nextOffset,
      truncated: tail ? offset > clearOffset : nextOffset < end,
      historyStart,
    };
  }

  private async readRange(vmId: string, from: number, to: number): Promise<Buffer> {
    if (to <= from) return Buffer.alloc(0);
    const fromMemory = this.attached.get(vmId)?.buffer.read(from, to);
    if (fromMemory) return fromMemory;
    return this.deps.log.read(this.deps.paths(vmId), from, to - from);
  }

  async clear(vm: Vm): Promise<{ offset: number }> {
    const end = await this.end(vm.id);
    this.deps.vms.setConsoleClearOffset(vm.id, end);
    return { offset: end };
  }

  /** Text (as UTF-8) or named keys, typed into the console of a running or paused VM. */
  async sendInput(vm: Vm, input: { text: string } | { keys: string[] }): Promise<{ bytes: number }> {
    assertCan('consoleWrite', vm.state, vm.name);
    return this.send(vm, 'text' in input ? Buffer.from(input.text, 'utf8') : keysToBytes(input.keys));
  }

  /** Raw bytes (the interactive WebSocket); the caller has checked the VM's state. */
  async send(vm: Vm, data: Buffer): Promise<{ bytes: number }> {
    const a = this.requireAttached(vm);
    await a.link.write(data);
    return { bytes: data.length };
  }

  subscribe(vmId: string, listener: Listener): () => void {
    const a = this.attached.get(vmId);
    if (!a) return () => undefined;
    a.listeners.add(listener);
    return () => { a.listeners.delete(listener); };
  }

  /**
   * Waits until output after `fromOffset` matches. History is searched slice by slice and only a bounded
   * window of recent text is matched each time, so neither memory nor one match grows with the log.
   */
  async waitFor(vm: Vm, pattern: string, fromOffset: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitResult> {
    const re = compileWaitPattern(pattern);
    const started = Date.now();
    const a = this.attached.get(vm.id);
    let settle: ((r: WaitResult | Error) => void) | null = null;
    const early: Buffer[] = [];
    // Subscribe before reading history, in the same tick as taking the end offset: nothing falls between.
    const off = a ? this.subscribe(vm.id, (chunk) => (settle ? live(chunk) : early.push(chunk))) : () => undefined;
    const historyEnd = a ? a.buffer.end : await this.end(vm.id);
    const window = new MatchWindow(re, Math.max(fromOffset, await this.historyStart(vm.id)), started);
    const live = (chunk: Buffer): void => {
      const r = window.feed(chunk);
      if (r && settle) settle(r);
    };
    try {
      for (let at = window.start; at < historyEnd; at += HISTORY_SCAN_BYTES) {
        const r = window.feed(await this.readRange(vm.id, at, Math.min(historyEnd, at + HISTORY_SCAN_BYTES)));
        if (r) return r;
      }
      if (!a) throw new DomainError('INVALID_STATE', `VM '${vm.name}' has no live console while it is ${vm.state}`, { state: vm.state });
      return await new Promise<WaitResult>((resolve, reject) => {
        const timer = setTimeout(() => settle?.(new DomainError('TIMEOUT', `console output did not match ${pattern} within ${timeoutMs / 1000}s`, { pattern })), timeoutMs);
        const gone = setInterval(() => {
          if (this.attached.get(vm.id) !== a) settle?.(new DomainError('INVALID_STATE', `VM '${vm.name}' stopped while waiting for console output`, { state: 'stopped' }));
        }, 200);
        settle = (r) => {
          settle = () => undefined;
          clearTimeout(timer);
          clearInterval(gone);
          if (r instanceof Error) reject(r); else resolve(r);
        };
        // A wait on several conditions gives this one up once it is decided elsewhere.
        signal?.addEventListener('abort', () => settle?.(new DomainError('TIMEOUT', 'console wait abandoned')), { once: true });
        if (signal?.aborted) settle(new DomainError('TIMEOUT', 'console wait abandoned'));
        for (const c of early.splice(0)) live(c);
      });
    } finally {
      off();
    }
  }

  /** Like waitFor, from `since` or, without it, only in output that appears from now on. */
  async waitForOutput(vm: Vm, pattern: string, opts: { since?: number; timeoutMs: number }): Promise<WaitResult> {
    const from = opts.since ?? (await this.end(vm.id));
    return this.waitFor(vm, pattern, from, opts.timeoutMs);
  }

  async execute(vm: Vm, command: string, timeoutMs: number): Promise<ExecuteResult> {
    assertCan('consoleWrite', vm.state, vm.name);
    const a = this.requireAttached(vm);
    const run = a.executing.then(() => this.executeNow(vm, a, command, timeoutMs));
    a.executing = run.catch(() => undefined);
    return run;
  }

  private async executeNow(vm: Vm, a: Attached, command: string, timeoutMs: number): Promise<ExecuteResult> {
    const frame = frameCommand(command, randomBytes(6).toString('hex'));
    const started = Date.now();
    let text = '';
    return new Promise<ExecuteResult>((resolve, reject) => {
      let finished = false;
      const finish = (r: ExecuteResult | Error): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearInterval(gone);
        off();
        if (r instanceof Error) reject(r); else resolve(r);
      };
      const off = this.subscribe(vm.id, (chunk) => {
        text += chunk.toString('latin1');
        const r = parseExecuteOutput(text, frame);
        if (r.done) {
          finish({ output: Buffer.from(r.output, 'latin1').toString('utf8'), exitCode: r.exitCode, timedOut: false, durationMs: Date.now() - started });
        }
      });
      const timer = setTimeout(() => {
        const r = parseExecuteOutput(text, frame);
        // Ctrl-C ends whatever is still running (or a half-read line) so the next caller finds a prompt.
        void a.link.write(Buffer.from('\x03')).catch(() => undefined);
        finish({ output: Buffer.from(r.output, 'latin1').toString('utf8'), exitCode: null, timedOut: true, durationMs: Date.now() - started });
      }, timeoutMs);
      const gone = setInterval(() => {
        if (this.attached.get(vm.id) !== a) finish(new DomainError('INVALID_STATE', `VM '${vm.name}' stopped during the command`, { state: 'stopped' }));
      }, 200);
      a.link.write(Buffer.from(frame.input, 'utf8')).catch((e: unknown) => finish(new DomainError('QEMU_FAILED', `console write failed: ${errorMessage(e)}`)));
    });
  }

  private requireAttached(vm: Vm): Attached {
    const a = this.attached.get(vm.id);
    if (!a) throw new DomainError('INVALID_STATE', `VM '${vm.name}' has no live console while it is ${vm.state}`, { state: vm.state });
    return a;
  }
}

/**
 * The recent console text a wait matches against: bytes are decoded as a stream (a character split
 * between two chunks stays whole) and only the last MATCH_WINDOW characters are kept between checks.
 */
class MatchWindow {
  private text = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly re: WaitPattern, private textStart: number, private readonly started: number) {}

  get start(): number {
    return this.textStart;
  }

  feed(chunk: Buffer): WaitResult | null {
    this.text += this.decoder.write(chunk);
    const m = this.re.find(this.text);
    if (m) return { matched: m.text, offset: this.textStart + Buffer.byteLength(this.text.slice(0, m.index)), elapsedMs: Date.now() - this.started };
    if (this.text.length > MATCH_WINDOW) {
      const cut = this.text.length - MATCH_WINDOW;
      this.textStart += Buffer.byteLength(this.text.slice(0, cut));
      this.text = this.text.slice(cut);
    }
    return null;
  }
}
