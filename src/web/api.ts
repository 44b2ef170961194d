import { GroveClient } from '../client/client.js';
import { ApiError } from '../client/errors.js';
import { replace } from './dom.js';

/** No token: the page's requests ride on the session cookie the browser attaches to same-origin calls. */
export const api = new GroveClient({ url: location.origin });

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.detail} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}

export function isUnauthorized(e: unknown): boolean {
  return e instanceof ApiError && e.status === 401;
}

let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(fn: () => void): void { onUnauthorized = fn; }

export function showError(e: unknown): void {
  if (isUnauthorized(e)) { onUnauthorized(); return; }
  const el = document.getElementById('alert')!;
  replace(el, errorText(e), ' ');
  el.append(Object.assign(document.createElement('button'), { type: 'button', className: 'ghost', textContent: 'Dismiss', onclick: () => { el.hidden = true; } }));
  el.hidden = false;
}

export function clearError(): void {
  document.getElementById('alert')!.hidden = true;
}

export function say(text: string): void {
  document.getElementById('status')!.textContent = text;
}

/**
 * Runs one user action: the button is disabled and marked busy while it runs, progress is announced,
 * and a failure shows the API's problem detail. Never fails silently.
 */
export function act(label: string, fn: () => Promise<unknown>, button?: HTMLButtonElement): void {
  run(label, fn, button).catch(showError);
}

async function run(label: string, fn: () => Promise<unknown>, button?: HTMLButtonElement): Promise<void> {
  clearError();
  say(`${label}…`);
  if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
  try {
    await fn();
    say(`${label}: done`);
  } catch (e) {
    say(`${label}: failed`);
    showError(e);
  } finally {
    if (button) { button.disabled = false; button.removeAttribute('aria-busy'); }
  }
}

export function wsUrl(path: string, query: Record<string, string> = {}): string {
  const u = new URL(`/api/v1${path}`, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  return u.toString();
}

/** Background work whose failure only matters to the next attempt (polls, refreshes). */
export function quietly(p: Promise<unknown>): void {
  p.catch(() => undefined);
}
