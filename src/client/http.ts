import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { errorMessage } from '../util/errors.js';
import { ApiError, UnreachableError } from './errors.js';

/**
 * How long a call waits for its answer when it names no wait of its own. Calls that wait on the guest
 * (start --wait-for, stop, exec, launch) pass their own bound instead, so no client-side limit ends an
 * operation the daemon is still carrying out (Node's fetch cut every answer off after 300 s).
 */
export { DEFAULT_TIMEOUT_MS, TIMEOUT_MARGIN_MS, waitBound } from './http-common.js';

export interface HttpCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer | Readable | undefined;
  /** Until the answer's headers arrive (streams) or its whole body (see `readText`). */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface HttpAnswer {
  status: number;
  statusText: string;
  headers: IncomingMessage['headers'];
  body: IncomingMessage;
}

/** The timer of a call: cleared by the caller once done; `expired` holds the error once it has passed. */
export interface Deadline { clear(): void; expired: ApiError | null }

/**
 * One HTTP(S) request with node:http: no built-in header or body timeout, only the deadline given.
 * Network failures become UnreachableError; the deadline passing becomes a TIMEOUT ApiError.
 */
export function send(call: HttpCall, baseUrl: string): Promise<{ answer: HttpAnswer; deadline: Deadline }> {
  return new Promise((resolve, reject) => {
    const req = openRequest(new URL(call.url), { method: call.method, headers: call.headers, signal: call.signal }, call.body);
    let settled = false;
    const deadline: Deadline = { clear: () => clearTimeout(timer), expired: null };
    const timer = setTimeout(() => {
      const err = new ApiError(504, 'TIMEOUT', `no answer from the daemon within ${Math.round(call.timeoutMs / 1000)} s (the client's limit for this call); the operation may still be running`);
      deadline.expired = err;
      req.destroy(err);
      if (!settled) { settled = true; reject(err); }
    }, call.timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e.name === 'AbortError') reject(e);
      else reject(new UnreachableError(baseUrl, e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : e.message));
    });
    req.on('response', (res) => {
      if (settled) { res.destroy(); return; }
      settled = true;
      resolve({ answer: { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: res }, deadline });
    });
  });
}

/** The whole body as text (still under the call's deadline). */
export async function readText(answer: HttpAnswer, deadline: Deadline, baseUrl: string): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of answer.body) chunks.push(c as Buffer);
  } catch (e) {
    if (deadline.expired) throw deadline.expired;
    throw new UnreachableError(baseUrl, `the answer broke off: ${errorMessage(e)}`);
  } finally {
    deadline.clear();
  }
  if (deadline.expired) throw deadline.expired;
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A `fetch` over node:http(s) for streams and for libraries that take one (the MCP SDK's transport): the
 * same request and a streamed Response, without undici's 300 s headers and body timeouts — a tool call that
 * waits on the guest longer than that, or a job's output that stays silent, is bounded by the caller only.
 */
export async function fetchWithoutTimeouts(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
  const method = init.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const req = openRequest(url, { method, headers, signal: init.signal ?? undefined }, requestBody(init.body));
    req.on('error', reject);
    req.on('response', (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        for (const x of Array.isArray(v) ? v : [v]) h.append(k, x);
      }
      const status = res.statusCode ?? 0;
      const noBody = status === 204 || status === 304 || method === 'HEAD';
      if (noBody) res.resume();
      resolve(new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: h }));
    });
  });
}

/**
 * The request both paths make: node:http(s) by the URL's scheme, no built-in timeouts, the body sent whole
 * or piped (a failing body stream ends the request with its error). The caller listens for its answer.
 */
function openRequest(url: URL, opts: { method: string; headers: Record<string, string>; signal?: AbortSignal | undefined }, body: string | Uint8Array | Readable | undefined): ClientRequest {
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts);
  if (body instanceof Readable) {
    body.on('error', (e) => req.destroy(e));
    body.pipe(req);
  } else req.end(body);
  return req;
}

/** Text and bytes are sent whole; a stream or an async iterable of chunks is piped (chunked), never buffered. */
function requestBody(b: RequestInit['body'] | AsyncIterable<Uint8Array>): string | Uint8Array | Readable | undefined {
  if (b === undefined || b === null) return undefined;
  if (typeof b === 'string' || b instanceof Uint8Array) return b;
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (b instanceof ReadableStream) return Readable.fromWeb(b as import('node:stream/web').ReadableStream<Uint8Array>);
  if (Symbol.asyncIterator in b) return Readable.from(b);
  throw new TypeError('unsupported request body (text, bytes or a stream)');
}
