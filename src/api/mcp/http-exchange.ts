import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, JSONRPCMessageSchema, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';

/** The JSON-RPC messages of one HTTP POST, checked against the SDK's own message schema. */
export type ParsedBody =
  | { ok: true; messages: JSONRPCMessage[]; batch: boolean }
  | { ok: false; error: string };

const MAX_BATCH = 100;

export function parseMessages(body: unknown): ParsedBody {
  const batch = Array.isArray(body);
  const items: unknown[] = batch ? body : [body];
  if (items.length === 0) return { ok: false, error: 'empty batch' };
  if (items.length > MAX_BATCH) return { ok: false, error: `a batch may hold at most ${MAX_BATCH} messages` };
  const messages: JSONRPCMessage[] = [];
  for (const item of items) {
    const r = JSONRPCMessageSchema.safeParse(item);
    if (!r.success) return { ok: false, error: 'not a JSON-RPC 2.0 message' };
    messages.push(r.data);
  }
  return { ok: true, messages, batch };
}

function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId; method: string } {
  return 'method' in m && 'id' in m;
}

/** JSON-RPC error code for a request its own client cancelled (as LSP has it; MCP names none). */
export const REQUEST_CANCELLED = -32800;
/**
 * The longest one POST may stay unanswered: beyond the longest wait a tool accepts (3600 s) plus a
 * distro download before a launch. Whatever is unanswered by then gets an error, so no POST hangs.
 */
export const EXCHANGE_DEADLINE_MS = 2 * 60 * 60 * 1000;

/**
 * One HTTP exchange as an SDK transport: the POSTed messages go to the server, and the exchange settles
 * once every request among them has its answer. Fastify owns the HTTP side (auth, Host/Origin, body
 * parsing and limits); this only carries JSON-RPC messages, so answering is one JSON body whatever the
 * client's Accept header says, which is what plain JSON-RPC clients need and what Streamable HTTP allows.
 *
 * Every request is answered exactly once: by the server, or here when the same POST cancelled it (the
 * SDK then sends nothing, by the MCP rule that a cancelled request gets no response, but an HTTP body
 * that held a request must still be answered), or here at the deadline.
 */
export class HttpExchangeTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  /** Requests still unanswered, counted by id (a batch may reuse an id). */
  private readonly unanswered = new Map<RequestId, number>();
  private outstanding = 0;
  private readonly responses: JSONRPCMessage[] = [];
  private done: (() => void) | null = null;

  constructor(private readonly deadlineMs = EXCHANGE_DEADLINE_MS) {}

  async start(): Promise<void> {}

  /** Delivers the messages and resolves with the answers to its requests (none for notifications only). */
  async exchange(messages: JSONRPCMessage[]): Promise<JSONRPCMessage[]> {
    const settled = new Promise<void>((resolve) => { this.done = resolve; });
    for (const m of messages) {
      if (isRequest(m)) {
        this.unanswered.set(m.id, (this.unanswered.get(m.id) ?? 0) + 1);
        this.outstanding++;
      }
    }
    if (this.outstanding === 0) {
      for (const m of messages) this.onmessage?.(m);
      return [];
    }
    for (const m of messages) this.onmessage?.(m);
    // The SDK handles notifications a microtask later than requests, so a cancel anywhere in the body
    // aborts that request and the SDK stays silent about it. Answered here after the synchronous answers
    // (an unknown method), which stand: a request is answered once, whoever comes first.
    for (const m of messages) {
      const cancelled = cancelledRequest(m);
      if (cancelled !== undefined) this.answer({ jsonrpc: '2.0', id: cancelled, error: { code: REQUEST_CANCELLED, message: 'request cancelled by the client' } });
    }
    const timer = setTimeout(() => {
      for (const [id, n] of [...this.unanswered]) {
        for (let i = 0; i < n; i++) this.answer({ jsonrpc: '2.0', id, error: { code: ErrorCode.RequestTimeout, message: `no answer within ${this.deadlineMs / 1000}s` } });
      }
    }, this.deadlineMs);
    await settled;
    clearTimeout(timer);
    return this.responses;
  }

  async send(message: JSONRPCMessage): Promise<void> {
    // Only responses can travel back on a plain POST; progress or log notifications have nowhere to go.
    if (!('id' in message) || message.id === undefined || 'method' in message) return;
    this.answer({ ...message, id: message.id });
  }

  /** Records an answer to a request still waiting for one; a late second answer (after a cancel) is dropped. */
  private answer(message: JSONRPCMessage & { id: RequestId }): void {
    const n = this.unanswered.get(message.id) ?? 0;
    if (n === 0) return;
    if (n === 1) this.unanswered.delete(message.id); else this.unanswered.set(message.id, n - 1);
    this.responses.push(message);
    if (--this.outstanding === 0) this.done?.();
  }

  async close(): Promise<void> {
    this.done?.();
    this.onclose?.();
  }
}

/** The request id a `notifications/cancelled` names, if `m` is one. */
function cancelledRequest(m: JSONRPCMessage): RequestId | undefined {
  if (!('method' in m) || 'id' in m || m.method !== 'notifications/cancelled') return undefined;
  const id = (m.params as { requestId?: unknown } | undefined)?.requestId;
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}
