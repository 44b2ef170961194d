/** What the node (http.ts) and browser (http-browser.ts) transports of the client share. */
export const DEFAULT_TIMEOUT_MS = 300_000;
/** Added to a call's own wait: the daemon answers TIMEOUT itself when the wait passes, a moment later. */
export const TIMEOUT_MARGIN_MS = 30_000;

/** The client's bound for a call that waits `seconds` on the daemon side (undefined: the default). */
export function waitBound(seconds: number | undefined, fallbackSeconds: number): number {
  return (seconds ?? fallbackSeconds) * 1000 + TIMEOUT_MARGIN_MS;
}
