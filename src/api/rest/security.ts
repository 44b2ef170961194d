import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { problem, sendProblem, type ProblemBody } from './problem.js';
import { SESSION_COOKIE, readCookie, type SessionKeys } from './session.js';

export interface SecurityOptions {
  token: string;
  /** Extra Host names accepted besides loopback ones (e.g. a name the daemon is published under). */
  allowedHosts: string[];
  /** The web UI's signed session cookies, accepted where no Authorization header is sent. */
  sessions?: SessionKeys;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Per-route flags, set in a route's `config`: the decision follows the matched route, not URL spelling. */
export interface RouteSecurity {
  /** No token needed (health, OpenAPI, docs). */
  public?: boolean;
  /** Browsers' cross-site requests are refused (streams, WebSockets, MCP). */
  originCheck?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig extends RouteSecurity {}
}

/** Why a request may not go on: the problem to answer, and whether to send the Bearer challenge with it. */
export interface Refusal { problem: ProblemBody; challenge: boolean }

/** What the access decision reads of a request: its method, its headers, the matched route's flags. */
export interface AccessInput {
  method: string;
  headers: IncomingHttpHeaders;
  flags: RouteSecurity;
}

/**
 * The one access decision (Host, Origin, token or session cookie), for Fastify's onRequest hook and for
 * the fast lane (fast-lane.ts), which takes only requests this lets through.
 */
export function accessCheck(opts: SecurityOptions): (r: AccessInput) => Refusal | null {
  const expected = digest(opts.token);
  const allowed = new Set(opts.allowedHosts.map((h) => h.toLowerCase()));
  const refused = (problem: ProblemBody, challenge = false): Refusal => ({ problem, challenge });

  return ({ method, headers, flags }) => {
    const host = hostName(headers.host);
    if (host === null || !(isLoopbackName(host) || allowed.has(host))) {
      // DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host.
      return refused(problem('FORBIDDEN', `Host '${headers.host ?? ''}' is not allowed (loopback names or --allowed-host only)`));
    }
    const origin = headers.origin;
    const isUpgrade = headers.upgrade !== undefined;
    if (origin !== undefined && (flags.originCheck || isUpgrade) && !sameOrigin(origin, headers.host!)) {
      return refused(problem('FORBIDDEN', `Origin '${origin}' may not use this endpoint`));
    }
    if (flags.public) return null;
    const auth = headers.authorization;
    const cookie = auth === undefined && opts.sessions ? readCookie(headers.cookie, SESSION_COOKIE) : null;
    if (cookie !== null) {
      if (opts.sessions!.verify(cookie) === null) {
        return refused(problem('UNAUTHORIZED', 'the session has expired or was signed out: sign in again'));
      }
      // A browser attaches cookies to whatever request a page makes: a change (or a WebSocket) made on the
      // strength of the cookie must come from the daemon's own page, whatever SameSite does.
      if ((!SAFE_METHODS.has(method) || isUpgrade) && (origin === undefined || !sameOrigin(origin, headers.host!))) {
        return refused(problem('FORBIDDEN', origin === undefined
          ? 'a request authenticated by the session cookie must carry an Origin header'
          : `Origin '${origin}' may not use this endpoint`));
      }
      return null;
    }
    const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
    if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
      return refused(problem('UNAUTHORIZED', m ? 'wrong token' : 'missing Authorization: Bearer <token> header'), true);
    }
    return null;
  };
}

export function registerSecurity(app: FastifyInstance, check: (r: AccessInput) => Refusal | null): void {
  app.addHook('onRequest', async (req, reply) => {
    const r = check({ method: req.method, headers: req.headers, flags: (req.routeOptions.config ?? {}) as RouteSecurity });
    if (r === null) return;
    if (r.challenge) reply.header('www-authenticate', BEARER_CHALLENGE);
    return refuse(req, reply, r.problem);
  });
}

/** The WWW-Authenticate value sent with a 401 for a missing or wrong token. */
export const BEARER_CHALLENGE = 'Bearer realm="grove"';

/**
 * A refused WebSocket upgrade is answered and then its socket is closed: it was taken out of the HTTP
 * server's keep-alive handling, so nothing else would ever close it.
 */
function refuse(req: FastifyRequest, reply: FastifyReply, body: ProblemBody): FastifyReply {
  if (req.headers.upgrade !== undefined) {
    reply.header('connection', 'close');
    reply.raw.once('finish', () => req.raw.socket.destroy());
  }
  return sendProblem(reply, body);
}

/** Hashing first makes the comparison constant-time regardless of the presented token's length. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function hostName(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? null : h.slice(1, end);
  }
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

export function isLoopbackName(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

function sameOrigin(origin: string, hostHeader: string): boolean {
  try {
    const o = new URL(origin);
    return (o.protocol === 'http:' || o.protocol === 'https:') && o.host.toLowerCase() === hostHeader.toLowerCase();
  } catch {
    return false;
  }
}
