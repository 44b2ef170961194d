// The browser's stand-in for ./http.ts (node:http), swapped in by scripts/build-web.mjs: the same exports,
// over fetch. A browser has no undici timeouts to escape, so fetch with the call's own deadline is enough.
import { ApiError, UnreachableError } from './errors.js';

export { DEFAULT_TIMEOUT_MS, TIMEOUT_MARGIN_MS, waitBound } from './http-common.js';

export interface HttpCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | undefined;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface HttpAnswer { status: number; statusText: string; response: Response }
export interface Deadline { clear(): void; expired: ApiError | null }

export async function send(call: HttpCall, baseUrl: string): Promise<{ answer: HttpAnswer; deadline: Deadline }> {
  const ctl = new AbortController();
  const deadline: Deadline = { clear: () => clearTimeout(timer), expired: null };
  const timer = setTimeout(() => {
    deadline.expired = new ApiError(504, 'TIMEOUT', `no answer from the daemon within ${Math.round(call.timeoutMs / 1000)} s; the operation may still be running`);
    ctl.abort(deadline.expired);
  }, call.timeoutMs);
  call.signal?.addEventListener('abort', () => ctl.abort(call.signal?.reason), { once: true });
  try {
    const response = await fetch(call.url, { method: call.method, headers: call.headers, body: call.body ?? null, signal: ctl.signal, credentials: 'same-origin' });
    return { answer: { status: response.status, statusText: response.statusText, response }, deadline };
  } catch (e) {
    clearTimeout(timer);
    if (deadline.expired) throw deadline.expired;
    if (e instanceof Error && e.name === 'AbortError') throw e;
    throw new UnreachableError(baseUrl, e instanceof Error ? e.message : String(e));
  }
}

export async function readText(answer: HttpAnswer, deadline: Deadline, baseUrl: string): Promise<string> {
  try {
    return await answer.response.text();
  } catch (e) {
    if (deadline.expired) throw deadline.expired;
    throw new UnreachableError(baseUrl, `the answer broke off: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    deadline.clear();
  }
}

/** A browser's fetch has no client-side timeouts to escape. */
export const fetchWithoutTimeouts: typeof fetch = (input, init) => fetch(input, { credentials: 'same-origin', ...init });
