import { invalid } from './errors.js';
import { isValidTypePattern } from './events.js';

export const WEBHOOK_URL_MAX = 2048;
export const WEBHOOK_SECRET_MIN = 16;
export const WEBHOOK_SECRET_MAX = 256;
export const WEBHOOK_EVENTS_MAX = 64;
export const WEBHOOK_DESCRIPTION_MAX = 500;
export const WEBHOOKS_MAX = 100;

/**
 * A receiver URL: absolute http(s), parseable, a host, no credentials (they would be stored and logged
 * in plain text; use the secret to authenticate deliveries instead). Returns the normalised form.
 */
export function checkWebhookUrl(text: string): string {
  if (text.length > WEBHOOK_URL_MAX) throw invalid(`url is longer than ${WEBHOOK_URL_MAX} characters`, { field: 'url' });
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw invalid(`url '${text.slice(0, 200)}' is not an absolute URL`, { field: 'url' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`url scheme must be http or https (got '${u.protocol.slice(0, -1)}')`, { field: 'url' });
  if (u.hostname === '') throw invalid('url has no host', { field: 'url' });
  if (u.username !== '' || u.password !== '') throw invalid('url must not carry credentials (user:password@); sign deliveries with a secret instead', { field: 'url' });
  if (u.hash !== '') throw invalid('url must not have a #fragment (it is never sent to the receiver)', { field: 'url' });
  return u.href;
}

/** Exact event types or `prefix.*`; duplicates dropped; an empty list means every event. */
export function checkWebhookEvents(events: readonly string[]): string[] {
  const bad = events.filter((p) => !isValidTypePattern(p));
  if (bad.length > 0) throw invalid(`unknown event type or pattern: ${bad.map((b) => `'${b.slice(0, 64)}'`).join(', ')} (use exact types such as vm.started, or prefix.* such as vm.*)`, { field: 'events' });
  return [...new Set(events)];
}

/**
 * The secret is used as raw bytes for both signatures. Printable ASCII only: then its UTF-8 bytes are its
 * characters, which is what receivers get from `new Webhook(secret, { format: "raw" })` (the
 * standardwebhooks library maps each UTF-16 code unit to one byte, so a non-ASCII secret would not verify).
 */
export function checkWebhookSecret(secret: string): string {
  if (secret.length < WEBHOOK_SECRET_MIN || secret.length > WEBHOOK_SECRET_MAX) {
    throw invalid(`secret must be ${WEBHOOK_SECRET_MIN} to ${WEBHOOK_SECRET_MAX} characters (got ${secret.length})`, { field: 'secret' });
  }
  if (!/^[\x20-\x7e]+$/.test(secret)) throw invalid('secret must be printable ASCII (letters, digits, punctuation, space)', { field: 'secret' });
  return secret;
}
