import type { Static } from '@sinclair/typebox';
import type { Problem } from '../api/schemas/common.js';

export type ProblemBody = Static<typeof Problem>;

/** The daemon answered with an RFC 9457 problem (or something we could not read as one). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    /** The whole problem body, for callers that want extra facts (e.g. `state` of INVALID_STATE). */
    readonly problem: Partial<ProblemBody> & Record<string, unknown> = {},
  ) {
    super(`${detail} (${code})`);
    this.name = 'ApiError';
  }
}

/** No HTTP answer at all: connection refused, DNS failure, reset before a response. */
export class UnreachableError extends Error {
  constructor(readonly url: string, readonly reason: string) {
    super(`cannot reach the Grove daemon at ${url}: ${reason}`);
    this.name = 'UnreachableError';
  }
}

/** Codes for failures the client sees without a problem body from the daemon. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'VALIDATION_FAILED', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 502: 'QEMU_FAILED', 503: 'UNAVAILABLE', 504: 'TIMEOUT',
};

export function codeForStatus(status: number): string {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'HTTP_ERROR');
}

/** Builds the error from a response body text (problem+json when the daemon sent one). */
export function apiErrorFrom(status: number, statusText: string, text: string): ApiError {
  try {
    const p = JSON.parse(text) as Record<string, unknown>;
    if (p && typeof p === 'object' && typeof p['detail'] === 'string') {
      const code = typeof p['code'] === 'string' ? p['code'] : codeForStatus(status);
      return new ApiError(typeof p['status'] === 'number' ? p['status'] : status, code, p['detail'], p as ApiError['problem']);
    }
  } catch { /* not JSON */ }
  return new ApiError(status, codeForStatus(status), `HTTP ${status} ${statusText}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

/** Node's fetch wraps the socket error in `cause`; that is the part worth showing. */
export function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` ${cause.message}` : ''}`.trim();
  return cause?.message ?? (e instanceof Error ? e.message : String(e));
}
