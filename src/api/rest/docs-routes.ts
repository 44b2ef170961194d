import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Grove API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/api/v1/openapi.json"></redoc>
<script src="/api/v1/docs/redoc.standalone.js"></script></body></html>`;

/**
 * Redoc's prebuilt bundle, copied from the npm package at build time (scripts/build-assets.mjs): the docs
 * work on a host without internet, load no CDN, and the runtime needs no Redoc package.
 */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  const bundlePath = new URL('../../../assets/redoc/redoc.standalone.js', import.meta.url);
  let bundle: Buffer | null = null;

  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => reply.type('application/json').send(app.swagger()));
  app.get('/docs', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
  app.get('/docs/redoc.standalone.js', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => {
    bundle ??= await readFile(bundlePath);
    return reply.type('application/javascript').header('cache-control', 'public, max-age=86400').send(bundle);
  });
}
