import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { problem, sendProblem } from './problem.js';

/** `npm run build` bundles src/web into dist/web; this file runs from dist/src/api/rest. */
export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2', '.ico': 'image/x-icon',
};

/**
 * Scripts only from this origin; xterm.js sets element styles and noVNC draws into a canvas, so inline
 * styles are allowed but inline scripts are not. Screenshots are shown as blob: URLs.
 */
export const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
  "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

interface Asset { path: string; body: Buffer | null; gzip: Buffer | null; type: string }

/**
 * The web UI: index.html at `/` (always revalidated) and content-hashed files under `/assets/` (cached for
 * a year). Only the files the build wrote are served — the set is listed once, so no request names a path.
 * Their bytes are read on first request (then kept): a daemon serving only the API never holds them.
 */
export async function webRoutes(app: FastifyInstance, { dir = WEB_DIR }: { dir?: string } = {}): Promise<void> {
  const assets = new Map<string, Asset>();
  let index: Buffer | null = null;
  try {
    index = readFileSync(join(dir, 'index.html'));
    for (const f of readdirSync(join(dir, 'assets'))) {
      assets.set(f, { path: join(dir, 'assets', f), body: null, gzip: null, type: TYPES[extname(f)] ?? 'application/octet-stream' });
    }
  } catch {
    app.log.warn({ dir }, 'web UI assets not found (run npm run build); / will answer 404');
  }

  const common = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
  app.get('/', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => {
    if (!index) return sendProblem(reply, problem('NOT_FOUND', 'the web UI was not built: run npm run build'));
    return reply.headers({ ...common, 'content-security-policy': CSP, 'cache-control': 'no-cache' }).type(TYPES['.html']!).send(index);
  });
  app.get<{ Params: { file: string } }>('/assets/:file', { schema: { hide: true }, config: { public: true } }, async (req, reply) => {
    const a = assets.get(req.params.file);
    if (!a) return sendProblem(reply, problem('NOT_FOUND', `no asset ${req.params.file}`));
    a.body ??= await readFile(a.path);
    reply.headers({ ...common, 'cache-control': 'public, max-age=31536000, immutable', vary: 'accept-encoding' }).type(a.type);
    if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
      // Compressed once, on first use (not at start: every daemon start would pay for it): the bundle is
      // mostly xterm.js and noVNC, a third of its size gzipped.
      a.gzip ??= gzipSync(a.body, { level: 9 });
      return reply.header('content-encoding', 'gzip').send(a.gzip);
    }
    return reply.send(a.body);
  });
}
