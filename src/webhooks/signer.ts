import { createHmac } from 'node:crypto';

export interface DeliveryHeadersInput {
  deliveryId: string;
  eventType: string;
  /** The exact bytes sent as the body. */
  body: string;
  secret: string | null;
  /** Unix seconds of this attempt (Standard Webhooks `webhook-timestamp`). */
  timestamp: number;
}

/** `sha256=<hex>` of HMAC-SHA256(secret, body): the `X-Nemeton-Secret` header (SPEC §7). */
export function nemetonSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(body, 'utf8').digest('hex')}`;
}

/**
 * Standard Webhooks `v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`. The secret is used as
 * its raw UTF-8 bytes (receivers verify with `new Webhook(secret, { format: "raw" })`), not base64-decoded.
 */
export function standardSignature(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64')}`;
}

/** Every header of one attempt. Signed afresh per attempt: the timestamp changes, the id and body do not. */
export function deliveryHeaders(i: DeliveryHeadersInput): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'grove-webhooks',
    'x-nemeton-event': i.eventType,
    'x-nemeton-delivery': i.deliveryId,
  };
  if (i.secret !== null) {
    h['x-nemeton-secret'] = nemetonSignature(i.secret, i.body);
    h['webhook-id'] = i.deliveryId;
    h['webhook-timestamp'] = String(i.timestamp);
    h['webhook-signature'] = standardSignature(i.secret, i.deliveryId, i.timestamp, i.body);
  }
  return h;
}
