import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { responses } from '../schemas/common.js';
import { SessionInfo, SignInBody } from '../schemas/session.js';
import { problem, sendProblem } from './problem.js';
import { SESSION_COOKIE, clearedSessionCookie, readCookie, sessionCookie, type SessionKeys } from './session.js';

const tags = ['Sessions'];
const sha = (s: string): Buffer => createHash('sha256').update(s).digest();
const secure = (req: FastifyRequest): boolean => req.protocol === 'https';
const iso = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

/** Sign-in for the web UI: the token once, then an HttpOnly SameSite=Strict cookie (see session.ts). */
export async function sessionRoutes(app: FastifyInstance, { token, sessions }: { token: string; sessions: SessionKeys }): Promise<void> {
  const expected = sha(token);

  app.post<{ Body: Static<typeof SignInBody> }>('/session', {
    config: { public: true, originCheck: true },
    schema: {
      tags, summary: 'Sign in (web UI)', operationId: 'signIn',
      description: 'Exchanges the API token for a signed, expiring, HttpOnly `SameSite=Strict` session cookie that the web UI\'s requests and WebSockets ride on. Scripts keep using `Authorization: Bearer`.',
      body: SignInBody, response: responses({ 200: SessionInfo }, [], { public: true }),
      security: [],
    },
  }, async (req, reply) => {
    if (!timingSafeEqual(sha(req.body.token), expected)) return sendProblem(reply, problem('UNAUTHORIZED', 'wrong token'));
    const s = sessions.issue();
    reply.header('set-cookie', sessionCookie(s, secure(req)));
    return { expiresAt: iso(s.expiresAt) };
  });

  app.get('/session', {
    schema: {
      tags, summary: 'The current session', operationId: 'getSession',
      description: 'When the session cookie (or token) in use is good, 200 with its expiry; otherwise 401.',
      response: responses({ 200: SessionInfo }, []),
    },
  }, async (req) => {
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    const exp = cookie === null ? null : sessions.verify(cookie);
    // Bearer callers have no session expiry: the token lasts until the daemon gets another one.
    return { expiresAt: exp === null ? null : iso(exp) };
  });

  app.delete('/session', {
    schema: {
      tags, summary: 'Sign out (web UI)', operationId: 'signOut',
      description: 'Revokes the session cookie (it is refused from now on, even if replayed) and clears it.',
      response: responses({ 204: null }, []),
    },
  }, async (req, reply) => {
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (cookie !== null) sessions.revoke(cookie);
    reply.header('set-cookie', clearedSessionCookie(secure(req)));
    return reply.code(204).send();
  });
}
