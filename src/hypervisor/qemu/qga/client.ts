import { randomInt } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { QgaClosedError, QgaCommandError, QgaTimeoutError, QgaUnavailableError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, QgaFrameReader, SENTINEL, classifyReply, encodeRequest, type QgaFrame } from './wire.js';

export interface QgaClientOptions {
  /** How long the `guest-sync-delimited` handshake may take before the agent counts as absent. Default 3000. */
  syncTimeoutMs?: number;
  /** Per-command timeout when execute() is not given one. Default 10 000. */
  defaultTimeoutMs?: number;
  /** How long to keep retrying a missing or refusing socket (QEMU still starting). Default 1000. */
  connectTimeoutMs?: number;
  /** Largest single reply accepted (guest-exec-status carries up to 2 × 16 MiB of output, base64). Default 64 MiB. */
  maxMessageBytes?: number;
  /** How long a command that answers only on failure (guest-shutdown) is given to report one. Default 1000. */
  noReplyGraceMs?: number;
}

export interface QgaExecuteOptions {
  timeoutMs?: number;
  /**
   * The command answers only when it fails (guest-shutdown, guest-suspend-*): success is silence for
   * `noReplyGraceMs`.
   */
  noReply?: boolean;
}

const RETRYABLE_CONNECT = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/** What the connection is waiting for. */
type Await =
  | { kind: 'sync'; id: number; afterSentinel: boolean; done: (err?: Error) => void }
  | { kind: 'reply'; id: number; command: string; resolve: (v: unknown) => void; reject: (e: Error) => void };

class Connection {
  readonly reader: QgaFrameReader;
  awaiting: Await | null = null;
  synced = false;
  closed = false;
  readonly gone: Promise<void>;

  constructor(readonly socket: net.Socket, maxMessageBytes: number) {
    this.reader = new QgaFrameReader(maxMessageBytes);
    this.gone = new Promise((r) => socket.once('close', () => r()));
  }
}

/**
 * A client of one VM's QEMU guest agent (the `org.qemu.guest_agent.0` virtio-serial channel, a unix
 * socket QEMU serves). Requests go one at a time through a queue: the agent answers in order and has no
 * other way to tell answers apart across a restart.
 *
 * QEMU keeps the host end of the channel open whether or not an agent runs in the guest, and bytes sent
 * while none listens wait in the channel and reach the next agent that starts. So before the first
 * command, and after any timeout or noise, the client synchronises: a 0xFF byte resets the agent's
 * parser, then `guest-sync-delimited` with a random id; everything up to the 0xFF sentinel the agent
 * puts before that answer, and any answer with another id, is dropped. No answer within
 * `syncTimeoutMs` means no agent (QgaUnavailableError), never a hang. Requests carry an id too, so a
 * late answer to a command that timed out cannot be taken for the answer to the next one.
 */
export class QgaClient {
  readonly #path: string;
  readonly #syncTimeoutMs: number;
  readonly #defaultTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxMessageBytes: number;
  readonly #noReplyGraceMs: number;
  #conn: Connection | null = null;
  #tail: Promise<unknown> = Promise.resolve();
  #nextId = 0;
  #closed = false;

  constructor(socketPath: string, opts: QgaClientOptions = {}) {
    this.#path = socketPath;
    this.#syncTimeoutMs = opts.syncTimeoutMs ?? 3000;
    this.#defaultTimeoutMs = opts.defaultTimeoutMs ?? 10_000;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.#maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#noReplyGraceMs = opts.noReplyGraceMs ?? 1000;
  }

  get socketPath(): string {
    return this.#path;
  }

  /** The last exchange left the stream in step with the agent (no handshake needed before the next command). */
  get synced(): boolean {
    return this.#conn?.synced === true && !this.#conn.closed;
  }

  /** Runs one agent command after the ones queued before it, and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: QgaExecuteOptions = {}): Promise<T> {
    return this.#enqueue(async () => {
      const conn = await this.#ready();
      return (await this.#request(conn, command, args, opts)) as T;
    });
  }

  /** A fresh handshake even when in step: proves that an agent answers now. */
  sync(): Promise<void> {
    return this.#enqueue(async () => {
      const conn = await this.#connected();
      conn.synced = false;
      await this.#handshake(conn);
    });
  }

  /** Drops the connection; queued and future calls fail with QgaClosedError. */
  async close(): Promise<void> {
    this.#closed = true;
    const conn = this.#conn;
    this.#conn = null;
    if (conn) {
      this.#drop(conn, new QgaClosedError('guest agent client closed'));
      await conn.gone;
    }
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#closed) throw new QgaClosedError('guest agent client closed');
      return fn();
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #ready(): Promise<Connection> {
    const conn = await this.#connected();
    if (!conn.synced) await this.#handshake(conn);
    return conn;
  }

  async #connected(): Promise<Connection> {
    if (this.#conn && !this.#conn.closed) return this.#conn;
    const socket = await this.#connect();
    const conn = new Connection(socket, this.#maxMessageBytes);
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => this.#drop(conn, new QgaClosedError(`guest agent socket error: ${e.code ?? e.message}`)));
    socket.on('end', () => this.#drop(conn, new QgaClosedError('QEMU closed the guest agent channel')));
    socket.on('close', () => this.#drop(conn, new QgaClosedError('guest agent channel closed')));
    this.#conn = conn;
    return conn;
  }

  async #connect(): Promise<net.Socket> {
    const deadline = Date.now() + this.#connectTimeoutMs;
    let delay = 10;
    for (;;) {
      try {
        return await connectOnce(this.#path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (!RETRYABLE_CONNECT.has(code) || Date.now() >= deadline) {
          throw new QgaUnavailableError(`no guest agent channel at ${this.#path} (${code || String(e)}): is the VM running?`);
        }
      }
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, 100);
    }
  }

  #handshake(conn: Connection): Promise<void> {
    // Random, so an answer to a handshake of an earlier connection or daemon can never match.
    const id = randomInt(1, 2 ** 47);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (conn.awaiting?.kind === 'sync' && conn.awaiting.id === id) conn.awaiting = null;
        reject(new QgaUnavailableError(`the guest agent did not answer within ${this.#syncTimeoutMs} ms (no agent running in the guest?)`));
      }, this.#syncTimeoutMs);
      conn.awaiting = {
        kind: 'sync', id, afterSentinel: false,
        done: (err) => {
          clearTimeout(timer);
          if (err) { reject(err); return; }
          conn.synced = true;
          resolve();
        },
      };
      conn.socket.write(Buffer.from([SENTINEL]));
      conn.socket.write(encodeRequest('guest-sync-delimited', { id }, undefined));
    });
  }

  #request(conn: Connection, command: string, args: Record<string, unknown> | undefined, opts: QgaExecuteOptions): Promise<unknown> {
    const id = ++this.#nextId;
    const line = encodeRequest(command, args, id);
    const timeoutMs = opts.noReply ? this.#noReplyGraceMs : (opts.timeoutMs ?? this.#defaultTimeoutMs);
    return new Promise<unknown>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        if (conn.awaiting?.kind === 'reply' && conn.awaiting.id === id) conn.awaiting = null;
      };
      const timer = setTimeout(() => {
        finish();
        if (opts.noReply) {
          // Success is silence; an answer might still trail in, so the next command resynchronises first.
          conn.synced = false;
          resolve(undefined);
          return;
        }
        conn.synced = false;
        reject(new QgaTimeoutError(command, timeoutMs));
      }, timeoutMs);
      conn.awaiting = {
        kind: 'reply', id, command,
        resolve: (v) => { finish(); resolve(v); },
        reject: (e) => { finish(); reject(e); },
      };
      conn.socket.write(line);
    });
  }

  #onData(conn: Connection, chunk: Buffer): void {
    for (const frame of conn.reader.push(chunk)) this.#onFrame(conn, frame);
  }

  #onFrame(conn: Connection, frame: QgaFrame): void {
    const w = conn.awaiting;
    if (frame.kind === 'garbage') {
      // Out of step: the next command resynchronises (the one waiting may still get its own answer).
      conn.synced = false;
      if (w?.kind === 'sync') w.afterSentinel = false;
      return;
    }
    if (w?.kind === 'sync') {
      if (frame.kind === 'sentinel') { w.afterSentinel = true; return; }
      const reply = classifyReply(frame.msg);
      if (w.afterSentinel && reply?.kind === 'return' && reply.value === w.id) {
        conn.awaiting = null;
        w.done();
        return;
      }
      w.afterSentinel = false;
      return;
    }
    if (frame.kind === 'sentinel' || w?.kind !== 'reply') return;
    const reply = classifyReply(frame.msg);
    // Answers to commands that timed out, and late handshake answers, carry other ids (or none).
    if (!reply || reply.id !== w.id) return;
    if (reply.kind === 'return') w.resolve(reply.value);
    else w.reject(new QgaCommandError(w.command, reply.errorClass, reply.desc));
  }

  #drop(conn: Connection, err: Error): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.synced = false;
    conn.socket.destroy();
    if (this.#conn === conn) this.#conn = null;
    const w = conn.awaiting;
    conn.awaiting = null;
    if (w?.kind === 'sync') w.done(new QgaUnavailableError(`guest agent channel closed during the handshake: ${err.message}`));
    else if (w?.kind === 'reply') w.reject(err);
  }
}

function connectOnce(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const onError = (err: Error): void => { socket.destroy(); reject(err); };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      // Until the client attaches its own handlers an error must not be thrown; it surfaces as a close.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}
