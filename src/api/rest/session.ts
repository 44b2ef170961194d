import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The browser's session cookie (the web UI); scripts keep using the Bearer token. */
export const SESSION_COOKIE = 'grove_session';
export const SESSION_TTL_SECONDS = 12 * 60 * 60;

export interface IssuedSession {
  value: string;
  expiresAt: number;
}

/**
 * Signed, expiring session values: `v1.<expires (unix s)>.<nonce>.<HMAC-SHA256>`. The HMAC key is derived
 * from the API token, so a daemon restarted with a new token refuses every old cookie, while a restart
 * with the same token (an upgrade; VMs outlive the daemon) keeps people signed in. Signing out revokes the
 * nonce in memory until the cookie would have expired anyway.
 */
export class SessionKeys {
  private readonly key: Buffer;
  private readonly revoked = new Map<string, number>();

  constructor(token: string, private readonly ttlSeconds = SESSION_TTL_SECONDS) {
    this.key = createHmac('sha256', token).update('grove web session v1').digest();
  }

  issue(nowMs = Date.now()): IssuedSession {
    const expiresAt = Math.floor(nowMs / 1000) + this.ttlSeconds;
    const body = `v1.${expiresAt}.${randomBytes(16).toString('base64url')}`;
    return { value: `${body}.${this.mac(body)}`, expiresAt };
  }

  /** The expiry (unix s) of a genuine, unexpired, not signed-out value; null for anything else. */
  verify(value: string, nowMs = Date.now()): number | null {
    const parts = value.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1' || !/^\d{1,12}$/.test(parts[1]!)) return null;
    const body = parts.slice(0, 3).join('.');
    const given = Buffer.from(parts[3]!, 'base64url');
    const want = Buffer.from(this.mac(body), 'base64url');
    if (given.length !== want.length || !timingSafeEqual(given, want)) return null;
    const expiresAt = Number(parts[1]);
    if (expiresAt * 1000 <= nowMs) return null;
    if (this.revoked.has(parts[2]!)) return null;
    return expiresAt;
  }

  revoke(value: string, nowMs = Date.now()): void {
    const expiresAt = this.verify(value, nowMs);
    if (expiresAt === null) return;
    for (const [nonce, exp] of this.revoked) if (exp * 1000 <= nowMs) this.revoked.delete(nonce);
    this.revoked.set(value.split('.')[2]!, expiresAt);
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

/** The named cookie's value from a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function sessionCookie(s: IssuedSession, secure: boolean): string {
  return `${SESSION_COOKIE}=${s.value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_SECONDS}${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
