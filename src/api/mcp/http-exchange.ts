import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';

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

/**
 * One HTTP exchange as an SDK transport: the POSTed messages go to the server, and the exchange settles
 * once every request among them has its response. Fastify owns the HTTP side (auth, Host/Origin, body
 * parsing and limits); this only carries JSON-RPC messages, so answering is one JSON body whatever the
 * client's Accept header says, which is what plain JSON-RPC clients need and what Streamable HTTP allows.
 */
export class HttpExchangeTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  /** Requests still unanswered (counted, not keyed: a batch may reuse an id). */
  private waiting = 0;
  private readonly responses: JSONRPCMessage[] = [];
  private done: (() => void) | null = null;

  async start(): Promise<void> {}

  /** Delivers the messages and resolves with the responses to its requests (none for notifications only). */
  exchange(messages: JSONRPCMessage[]): Promise<JSONRPCMessage[]> {
    this.waiting = messages.filter(isRequest).length;
    const settled = new Promise<void>((resolve) => { this.done = resolve; });
    for (const m of messages) this.onmessage?.(m);
    if (this.waiting === 0) return Promise.resolve([]);
    return settled.then(() => this.responses);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    // Only responses can travel back on a plain POST; progress or log notifications have nowhere to go.
    if (!('id' in message) || 'method' in message) return;
    this.responses.push(message);
    if (--this.waiting === 0) this.done?.();
  }

  async close(): Promise<void> {
    this.done?.();
    this.onclose?.();
  }
}
