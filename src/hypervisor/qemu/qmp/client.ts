import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { connectWithRetry } from './connect.js';
import { QmpClosedError, QmpCommandError, QmpProtocolError, QmpTimeoutError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, LineSplitter, encodeCommand, parseMessage, preview, type QmpMessage, type QmpTimestamp } from './wire.js';

export interface QmpVersion {
  major: number;
  minor: number;
  micro: number;
  /** Distribution build string, e.g. "Debian 1:7.2+dfsg-7"; may be empty. */
  package: string;
}

export interface QmpEvent {
  event: string;
  /** Always an object: QEMU omits "data" for payload-less events such as STOP. */
  data: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

export interface QmpConnectOptions {
  /** Bounds the whole of connect(): socket retries, greeting and negotiation. Default 5000. */
  connectTimeoutMs?: number;
  /** Per-command timeout used when execute() is not given one. Default 10 000. */
  defaultTimeoutMs?: number;
  /** Largest single QMP message accepted. Default 8 MiB. */
  maxMessageBytes?: number;
}

export interface QmpExecuteOptions {
  /** Milliseconds; `Infinity` disables the timeout. */
  timeoutMs?: number;
}

export interface QmpWaitForEventOptions {
  timeoutMs: number;
  predicate?: (data: Record<string, unknown>, event: QmpEvent) => boolean;
  /** Aborting rejects the wait with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Listener signatures. 'close' gets `undefined` only when close() was called
 * locally; any other end (QEMU exited, socket error, protocol violation) carries
 * an Error, since the client cannot tell an expected `quit` from a crash.
 */
export type QmpClientEvents = {
  event: [event: QmpEvent];
  close: [error: Error | undefined];
} & { [K in `event:${string}`]: [event: QmpEvent] };

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

// setTimeout fires immediately for delays above this, so treat them as "no timeout".
const MAX_TIMER_MS = 2 ** 31 - 1;

type State = 'greeting' | 'negotiating' | 'ready' | 'closed';

interface PendingCommand {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

interface EventWaiter {
  offer: (event: QmpEvent) => void;
  fail: (error: Error) => void;
}

export class QmpClient extends EventEmitter<QmpClientEvents> {
  readonly socketPath: string;
  #socket: net.Socket;
  #splitter: LineSplitter;
  #defaultTimeoutMs: number;
  #state: State = 'greeting';
  #nextId = 0;
  #pending = new Map<number, PendingCommand>();
  #waiters = new Set<EventWaiter>();
  #version: QmpVersion = { major: 0, minor: 0, micro: 0, package: '' };
  #capabilities: readonly string[] = [];
  #greeted!: { resolve: () => void; reject: (e: Error) => void };
  #greeting: Promise<void>;
  #socketClosed: Promise<void>;

  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + connectTimeoutMs;
    const socket = await connectWithRetry(socketPath, deadline, connectTimeoutMs);
    const client = new QmpClient(socket, socketPath, opts);
    try {
      await client.#handshake(deadline, connectTimeoutMs);
    } catch (err) {
      client.#teardown(err as Error);
      await client.#socketClosed;
      throw err;
    }
    return client;
  }

  private constructor(socket: net.Socket, socketPath: string, opts: QmpConnectOptions) {
    super();
    this.socketPath = socketPath;
    this.#socket = socket;
    this.#splitter = new LineSplitter(opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    this.#defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#greeting = new Promise<void>((resolve, reject) => {
      this.#greeted = { resolve, reject };
    });
    this.#greeting.catch(() => {}); // surfaced through #handshake
    this.#socketClosed = socket.closed ? Promise.resolve() : new Promise((r) => socket.once('close', () => r()));

    // Replaces connectWithRetry's placeholder; from here on every socket failure,
    // including EPIPE/ECONNRESET from a dying QEMU, funnels into #teardown.
    socket.removeAllListeners('error');
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A QEMU that exits (even after a clean `quit`) often resets the socket
      // instead of closing it, so ECONNRESET/EPIPE mean "QEMU went away".
      const gone = err.code === 'ECONNRESET' || err.code === 'EPIPE';
      const msg = gone ? `QEMU closed the QMP connection (${err.code})` : `QMP socket error: ${err.message}`;
      this.#teardown(new QmpClosedError(msg, { cause: err }));
    });
    socket.on('end', () => this.#teardown(new QmpClosedError('QEMU closed the QMP connection')));
    socket.on('close', () => this.#teardown(new QmpClosedError('QMP socket closed')));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    if (socket.destroyed) this.#teardown(new QmpClosedError('QMP socket closed during connect'));
  }

  /** QEMU version from the greeting. */
  get version(): QmpVersion {
    return this.#version;
  }

  /** Optional capabilities QEMU offered (e.g. "oob"); none are enabled. */
  get capabilities(): readonly string[] {
    return this.#capabilities;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  /**
   * Runs a QMP command and resolves with its "return" value. After a timeout
   * QEMU still runs the command; its eventual reply is dropped.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: QmpExecuteOptions = {}): Promise<T> {
    if (this.#state === 'closed') {
      return Promise.reject(new QmpClosedError(`cannot execute '${command}': QMP connection is closed`));
    }
    const timeoutMs = opts.timeoutMs ?? this.#defaultTimeoutMs;
    const id = ++this.#nextId;
    let line: string;
    try {
      line = encodeCommand(command, args, id);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs < MAX_TIMER_MS
          ? setTimeout(() => {
              this.#pending.delete(id);
              reject(new QmpTimeoutError(command, timeoutMs));
            }, Math.max(0, timeoutMs))
          : undefined;
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#socket.write(line);
    });
  }

  /**
   * Resolves with the next matching event. Call it before issuing the command
   * that triggers the event: QEMU often sends the event before the reply
   * (e.g. STOP precedes the return of `stop`).
   */
  waitForEvent(name: string, opts: QmpWaitForEventOptions): Promise<QmpEvent> {
    if (this.#state === 'closed') {
      return Promise.reject(new QmpClosedError(`cannot wait for ${name}: QMP connection is closed`));
    }
    const { signal, predicate, timeoutMs } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<QmpEvent>((resolve, reject) => {
      const finish = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: EventWaiter = {
        offer: (ev) => {
          if (ev.event !== name) return;
          let matched: boolean;
          try {
            matched = predicate ? predicate(ev.data, ev) : true;
          } catch (err) {
            finish();
            reject(err);
            return;
          }
          if (!matched) return;
          finish();
          resolve(ev);
        },
        fail: (err) => {
          finish();
          reject(err);
        },
      };
      const onAbort = (): void => waiter.fail(signal!.reason as Error);
      const timer =
        timeoutMs < MAX_TIMER_MS
          ? setTimeout(() => waiter.fail(new QmpTimeoutError(`event:${name}`, timeoutMs)), Math.max(0, timeoutMs))
          : undefined;
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Drops the connection without asking QEMU to quit. */
  async close(): Promise<void> {
    this.#teardown(undefined);
    await this.#socketClosed;
  }

  async #handshake(deadline: number, connectTimeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new QmpTimeoutError('connect', connectTimeoutMs, `no QMP greeting from ${this.socketPath}; is another client connected to this monitor?`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      await Promise.race([this.#greeting, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    this.#state = 'negotiating';
    try {
      // Until this succeeds QEMU rejects every other command with CommandNotFound
      // and withholds events.
      await this.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      if (err instanceof QmpTimeoutError) {
        throw new QmpTimeoutError('connect', connectTimeoutMs, 'qmp_capabilities was not answered');
      }
      throw err;
    }
    if (this.#state === 'negotiating') this.#state = 'ready';
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    const { lines, error } = this.#splitter.push(chunk);
    for (const line of lines) {
      if (this.closed) return; // an earlier line in this chunk may have ended the session
      let msg: QmpMessage;
      try {
        msg = parseMessage(line);
      } catch (err) {
        this.#teardown(err as Error);
        return;
      }
      this.#dispatch(msg, line);
    }
    if (error) this.#teardown(error);
  }

  #dispatch(msg: QmpMessage, line: string): void {
    if (this.#state === 'greeting') {
      if (msg.kind !== 'greeting') {
        this.#teardown(new QmpProtocolError(`expected QMP greeting, got ${preview(line)}`));
        return;
      }
      try {
        this.#acceptGreeting(msg.body);
      } catch (err) {
        this.#teardown(err as Error);
      }
      return;
    }
    switch (msg.kind) {
      case 'return':
      case 'error': {
        // Replies with an unknown id belong to commands that already timed out.
        // QEMU omits the id only when it could not parse our request, which
        // encodeCommand never produces, so those are dropped as well.
        if (typeof msg.id !== 'number') return;
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (p.timer) clearTimeout(p.timer);
        if (msg.kind === 'return') p.resolve(msg.value);
        else p.reject(new QmpCommandError(p.command, msg.error.class, msg.error.desc));
        return;
      }
      case 'event': {
        const ev: QmpEvent = { event: msg.event, data: msg.data, timestamp: msg.timestamp };
        this.#safeEmit('event', ev);
        this.#safeEmit(`event:${ev.event}`, ev);
        for (const w of [...this.#waiters]) w.offer(ev);
        return;
      }
      default:
        // A repeated greeting or an unknown message type: nothing to act on.
        return;
    }
  }

  #acceptGreeting(body: Record<string, unknown>): void {
    const version = body.version as { qemu?: Record<string, unknown>; package?: unknown } | undefined;
    const q = version?.qemu;
    if (!q || typeof q.major !== 'number' || typeof q.minor !== 'number' || typeof q.micro !== 'number') {
      throw new QmpProtocolError(`malformed QMP greeting: ${preview(JSON.stringify(body))}`);
    }
    this.#version = {
      major: q.major,
      minor: q.minor,
      micro: q.micro,
      package: typeof version.package === 'string' ? version.package.trim() : '',
    };
    this.#capabilities = Array.isArray(body.capabilities) ? body.capabilities.filter((c): c is string => typeof c === 'string') : [];
    this.#greeted.resolve();
  }

  #teardown(reason: Error | undefined): void {
    if (this.#state === 'closed') return;
    const wasGreeting = this.#state === 'greeting';
    this.#state = 'closed';
    this.#socket.destroy();
    const why = reason ? `: ${reason.message}` : '';
    for (const p of this.#pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new QmpClosedError(`QMP connection closed while '${p.command}' was pending${why}`, { cause: reason }));
    }
    this.#pending.clear();
    for (const w of [...this.#waiters]) w.fail(new QmpClosedError(`QMP connection closed while waiting for an event${why}`, { cause: reason }));
    if (wasGreeting) this.#greeted.reject(reason ?? new QmpClosedError('QMP connection closed before the greeting'));
    this.#safeEmit('close', reason);
  }

  // A throwing listener must not abort dispatch of the remaining lines or leave
  // the client half torn down, so its exception is re-thrown on a fresh tick.
  #safeEmit(name: string, ...args: unknown[]): void {
    try {
      (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}
