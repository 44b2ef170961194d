import { QmpProtocolError } from './errors.js';

export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a QMP byte stream into lines. QEMU terminates each JSON object with
 * "\r\n", but tolerate bare "\n" too. Bytes are kept until a full line is seen
 * so multi-byte UTF-8 sequences split across chunks decode correctly, and at most
 * `maxMessageBytes` (+1 for a trailing CR) are ever buffered: a peer that never
 * sends a newline cannot make us grow without bound.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes <= 0) {
      throw new RangeError(`maxMessageBytes must be a positive integer, got ${maxMessageBytes}`);
    }
  }

  /**
   * Returns the complete, non-empty lines in `chunk`. On an oversize line it
   * still returns the lines that preceded it, plus the error; the splitter is
   * unusable afterwards.
   */
  push(chunk: Buffer): { lines: string[]; error?: QmpProtocolError } {
    const lines: string[] = [];
    if (this.failed) return { lines, error: new QmpProtocolError('line splitter used after a protocol error') };
    let start = 0;
    try {
      while (start < chunk.length) {
        const nl = chunk.indexOf(LF, start);
        if (nl === -1) {
          this.append(chunk.subarray(start));
          break;
        }
        this.append(chunk.subarray(start, nl));
        const line = this.take();
        if (line !== '') lines.push(line);
        start = nl + 1;
      }
    } catch (err) {
      return { lines, error: err as QmpProtocolError };
    }
    return { lines };
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.maxMessageBytes + 1) this.fail(this.pendingBytes);
    this.pending.push(part);
  }

  private take(): string {
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (buf.length > 0 && buf[buf.length - 1] === CR) buf = buf.subarray(0, buf.length - 1);
    if (buf.length > this.maxMessageBytes) this.fail(buf.length);
    return buf.toString('utf8').trim();
  }

  private fail(size: number): never {
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
    throw new QmpProtocolError(`QMP message exceeds ${this.maxMessageBytes} bytes (saw at least ${size})`);
  }
}

export interface QmpErrorBody {
  class: string;
  desc: string;
}

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export type QmpMessage =
  | { kind: 'greeting'; body: Record<string, unknown> }
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; error: QmpErrorBody }
  | { kind: 'event'; event: string; data: Record<string, unknown>; timestamp: QmpTimestamp }
  | { kind: 'unknown'; raw: Record<string, unknown> };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and classifies one line; throws QmpProtocolError if it is not a JSON object. */
export function parseMessage(line: string): QmpMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new QmpProtocolError(`QMP sent a non-JSON line: ${preview(line)}`);
  }
  if (!isObject(msg)) throw new QmpProtocolError(`QMP sent a non-object message: ${preview(line)}`);

  if (typeof msg.event === 'string') {
    // Events without a payload (STOP, RESUME, ...) omit "data" entirely.
    const data = isObject(msg.data) ? msg.data : {};
    const ts = isObject(msg.timestamp) ? msg.timestamp : {};
    return {
      kind: 'event',
      event: msg.event,
      data,
      timestamp: {
        seconds: typeof ts.seconds === 'number' ? ts.seconds : 0,
        microseconds: typeof ts.microseconds === 'number' ? ts.microseconds : 0,
      },
    };
  }
  if ('return' in msg) return { kind: 'return', id: msg.id, value: msg.return };
  if ('error' in msg) {
    const e = isObject(msg.error) ? msg.error : {};
    return {
      kind: 'error',
      id: msg.id,
      error: {
        class: typeof e.class === 'string' ? e.class : 'GenericError',
        desc: typeof e.desc === 'string' ? e.desc : JSON.stringify(msg.error),
      },
    };
  }
  if (isObject(msg.QMP)) return { kind: 'greeting', body: msg.QMP };
  return { kind: 'unknown', raw: msg };
}

/** Serialises a command. QEMU accepts bare "\n" but "\r\n" matches what it sends back. */
export function encodeCommand(execute: string, args: Record<string, unknown> | undefined, id: unknown): string {
  const msg: Record<string, unknown> = { execute };
  if (args !== undefined) msg.arguments = args;
  if (id !== undefined) msg.id = id;
  return `${JSON.stringify(msg)}\r\n`;
}

export function preview(s: string, max = 120): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}
