/**
 * The guest agent's wire format: JSON objects, one per line, in both directions. A 0xFF byte from the
 * host resets the agent's parser; the agent precedes its answer to `guest-sync-delimited` with a 0xFF
 * sentinel. 0xFF never occurs in UTF-8 text, so it is a frame boundary wherever it appears.
 */
export const SENTINEL = 0xff;
const LF = 0x0a;

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export type QgaFrame =
  | { kind: 'sentinel' }
  | { kind: 'message'; msg: Record<string, unknown> }
  /** Bytes that are not one JSON object per line (a half line cut by a sentinel, noise, an oversize line). */
  | { kind: 'garbage'; preview: string };

/**
 * Splits the agent's byte stream into frames. Never fails for good: after garbage or an oversize line it
 * carries on at the next line or sentinel, so the client can resynchronise on the same connection.
 */
export class QgaFrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside an oversize line: dropping bytes until its end. */
  private skipping = false;

  constructor(readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes <= 0) throw new RangeError(`maxMessageBytes must be a positive integer, got ${maxMessageBytes}`);
  }

  push(chunk: Buffer): QgaFrame[] {
    const frames: QgaFrame[] = [];
    let start = 0;
    while (start < chunk.length) {
      const end = nextBoundary(chunk, start);
      if (end === -1) {
        this.append(chunk.subarray(start), frames);
        break;
      }
      this.append(chunk.subarray(start, end), frames);
      const line = this.take();
      if (chunk[end] === SENTINEL) {
        // A sentinel in the middle of a line cuts it: what came before can never parse.
        if (line !== null && line.trim() !== '') frames.push({ kind: 'garbage', preview: preview(line) });
        frames.push({ kind: 'sentinel' });
      } else if (line !== null) {
        const f = parseLine(line);
        if (f) frames.push(f);
      }
      start = end + 1;
    }
    return frames;
  }

  private append(part: Buffer, frames: QgaFrame[]): void {
    if (part.length === 0 || this.skipping) return;
    if (this.pendingBytes + part.length > this.maxMessageBytes) {
      frames.push({ kind: 'garbage', preview: `a message larger than ${this.maxMessageBytes} bytes` });
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = true;
      return;
    }
    this.pending.push(part);
    this.pendingBytes += part.length;
  }

  /** The line collected so far (null when it was oversize and dropped); resets for the next one. */
  private take(): string | null {
    if (this.skipping) {
      this.skipping = false;
      return null;
    }
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return buf.toString('utf8');
  }
}

function nextBoundary(chunk: Buffer, from: number): number {
  const lf = chunk.indexOf(LF, from);
  const ff = chunk.indexOf(SENTINEL, from);
  if (lf === -1) return ff;
  if (ff === -1) return lf;
  return Math.min(lf, ff);
}

function parseLine(line: string): QgaFrame | null {
  const text = line.trim();
  if (text === '') return null;
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'garbage', preview: preview(text) };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { kind: 'garbage', preview: preview(text) };
  return { kind: 'message', msg: msg as Record<string, unknown> };
}

export type QgaReply =
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; errorClass: string; desc: string };

/** A message that answers a command, or null (the agent sends nothing else, but noise must not count). */
export function classifyReply(msg: Record<string, unknown>): QgaReply | null {
  if ('return' in msg) return { kind: 'return', id: msg.id, value: msg.return };
  if ('error' in msg) {
    const e = typeof msg.error === 'object' && msg.error !== null ? (msg.error as Record<string, unknown>) : {};
    return {
      kind: 'error', id: msg.id,
      errorClass: typeof e.class === 'string' ? e.class : 'GenericError',
      desc: typeof e.desc === 'string' ? e.desc : JSON.stringify(msg.error),
    };
  }
  return null;
}

export function encodeRequest(execute: string, args: Record<string, unknown> | undefined, id: unknown): string {
  const msg: Record<string, unknown> = { execute };
  if (args !== undefined) msg.arguments = args;
  if (id !== undefined) msg.id = id;
  return `${JSON.stringify(msg)}\n`;
}

function preview(s: string, max = 120): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}
