import Fastify, { LogController, type FastifyBaseLogger, type FastifySchemaCompiler, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import { Ajv, type AnySchema } from 'ajv';
import addFormats from 'ajv-formats';
import { SHARED_SCHEMAS } from '../schemas/shared.js';
import type { ApiServices } from './context.js';
import { consoleRoutes } from './console-routes.js';
import { docsRoutes } from './docs-routes.js';
import { hostRoutes } from './host-routes.js';
import { logRoutes } from './log-routes.js';
import { RequestStats } from './request-stats.js';
import { StreamClients } from '../stream/stream-clients.js';
import { problem, sendProblem, toProblem } from './problem.js';
import { accessCheck, registerSecurity } from './security.js';
import { FastLanes } from './fast-lane.js';
import { jsonBodyReader } from './json-body.js';
import { vmRoutes } from './vm-routes.js';
import { webhookRoutes } from './webhook-routes.js';
import { snapshotRoutes } from './snapshot-routes.js';
import { machineRoutes } from './machine-routes.js';
import { bundleRoutes } from './bundle-routes.js';
import { downloadRoutes } from './download-routes.js';
import { launchRoutes } from './launch-routes.js';
import { eventRoutes } from '../stream/event-routes.js';
import { mcpRoutes } from '../mcp/mcp-routes.js';
import { agentRoutes, fileContentRoutes } from './agent-routes.js';
import { screenRoutes } from './screen-routes.js';
import { SessionKeys } from './session.js';
import { sessionRoutes } from './session-routes.js';
import { webRoutes } from './web-routes.js';
import { jobRoutes } from './job-routes.js';
import { waitRoutes } from './wait-routes.js';
import { forkRoutes } from './fork-routes.js';
import { lazySerializerFactory, lazyValidatorCompiler } from './lazy-compilers.js';

export interface AppOptions {
  services: ApiServices;
  token: string;
  allowedHosts?: string[];
  /** Serve HTTPS with this PEM certificate and key. */
  https?: { cert: Buffer; key: Buffer };
  logger?: FastifyBaseLogger;
  /**
   * When route schemas are compiled: 'lazy' (default) on each route's first request, 'eager' at start as
   * Fastify does by itself (tests use it to prove every schema compiles). See lazy-compilers.ts.
   */
  schemas?: 'lazy' | 'eager';
  /** The extra surfaces (MCP, webhooks) register themselves here without the REST layer knowing them. */
  plugins?: ((app: FastifyInstance) => Promise<void>)[];
}

const BODY_LIMIT = 1024 * 1024;

/**
 * Query strings and path params arrive as text and are coerced to their declared types; bodies are JSON
 * and validated strictly — a wrong type or an unknown field is a 400, never silently fixed or dropped.
 */
function validators() {
  const make = (coerce: boolean) => {
    const ajv = new Ajv({ coerceTypes: coerce ? 'array' : false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
    addFormats.default(ajv);
    for (const schema of SHARED_SCHEMAS) ajv.addSchema(schema);
    return ajv;
  };
  // Made with the first route compiled (see lazy-compilers.ts), not at start.
  let body: Ajv | null = null;
  let other: Ajv | null = null;
  return { body: () => (body ??= make(false)), other: () => (other ??= make(true)) };
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  // By route pattern, never the raw URL, so /metrics has a bounded set of series.
  const stats = { requests: new RequestStats(), streams: new StreamClients() };
  const sessions = new SessionKeys(opts.token);
  const access = accessCheck({ token: opts.token, allowedHosts: opts.allowedHosts ?? [], sessions });
  // The closures run per request, once `app` and its JSON parser exist.
  const lanes = new FastLanes({
    access,
    bodyLimit: BODY_LIMIT,
    parseJson: (text, done) => readJsonText(text, done),
    record: (method, route, status, seconds) => stats.requests.record(method, route, status, seconds),
    logBug: (err, route) => app.log.error({ err, route }, 'unhandled error'),
  });
  const app = Fastify({
    // Typed as the plain HTTP instance (the spread of `object` adds no type): routes and hooks are the same over TLS.
    ...(opts.https ? ({ https: opts.https } as object) : {}),
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // Per-request lines would drown the log (and cost throughput); errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // Open SSE streams and WebSockets would otherwise hold close() forever.
    forceCloseConnections: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // Errors the router raises before any route runs (a malformed %-escape in the URL) are problems too.
    frameworkErrors: (err, req, reply) => { void sendProblem(reply, toProblem(err, req)); },
    serverFactory: lanes.serverFactory(),
    ...(opts.schemas === 'eager' ? {} : { schemaController: { compilersFactory: { buildSerializer: lazySerializerFactory() } } }),
  });

  const ajv = validators();
  const compile: FastifySchemaCompiler<AnySchema> = ({ schema, httpPart }) => (httpPart === 'body' ? ajv.body() : ajv.other()).compile(schema);
  app.setValidatorCompiler(opts.schemas === 'eager' ? compile : lazyValidatorCompiler(compile));

  const readJsonText = jsonBodyReader(app);
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => readJsonText(body as string, done));
  // Fastify would take text/plain as a string and the schema would answer 400 for some routes; JSON is
  // the one body type the API reads, so text/plain is refused like every other type (415).
  app.removeContentTypeParser('text/plain');
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && (req.method === 'POST' || req.method === 'PATCH' || req.method === 'PUT')) {
      (req as { body: unknown }).body = {};
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    stats.requests.record(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err, req, reply) => {
    const p = toProblem(err, req);
    if (p.code === 'PAYLOAD_TOO_LARGE') drainRefusedBody(req, reply);
    if (p.status >= 500 && p.code === 'INTERNAL') req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, p);
  });
  const known = routeTable(app);
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0]!;
    const methods = known.methodsFor(path);
    if (methods.length > 0) {
      reply.header('allow', methods.join(', '));
      return sendProblem(reply, problem('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${path}; use ${methods.join(', ')}`));
    }
    return sendProblem(reply, problem('NOT_FOUND', `no route ${req.method} ${path}`));
  });

  registerSecurity(app, access);
  app.addHook('preClose', (done) => { lanes.close(); done(); });

  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  await app.register(swagger, {
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
    transformObject: (doc) => optionalEmptyBodies(('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject) as unknown as OpenApiDoc) as never,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Grove API',
        version: opts.services.version,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        description: 'Headless QEMU VM manager. Every endpoint except health, openapi.json and docs needs `Authorization: Bearer <token>`. Errors are RFC 9457 problem+json with a stable `code`. Wherever a path has `:id`, the VM id or its name is accepted.',
      },
      servers: [{ url: '/' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'VMs', description: 'Define, list, change and delete VMs.' },
        { name: 'Lifecycle', description: 'Start, stop, pause, resume, restart: state changes, one operation per VM at a time.' },
        { name: 'Console', description: 'The serial console: read by offset, type, run commands, interactive WebSocket.' },
        { name: 'Snapshots', description: 'Live snapshots with RAM and device state, or disk-only ones, restored exactly.' },
        { name: 'Events', description: 'Live and replayable events over SSE and WebSocket.' },
        { name: 'Webhooks', description: 'Signed HTTP POSTs of events to registered receivers, from a durable outbox: retried with exponential backoff for 24 h, at-least-once, with a stable delivery id.' },
        { name: 'Host', description: 'Liveness, host facts and usage.' },
        { name: 'Images', description: 'The distro catalog and verified, resumable image downloads.' },
        { name: 'Screen', description: 'The VM\'s screen as a device: VNC over WebSocket for viewers, keyboard and mouse input for scripts and agents.' },
        { name: 'Sessions', description: 'Sign-in for the web UI: the token once, then a session cookie.' },
        { name: 'Guest agent', description: 'Commands, addresses, OS facts and files inside the guest, through its QEMU guest agent (qemu-guest-agent).' },
        { name: 'Jobs', description: 'Durable exec jobs: output kept in the VM folder, followed live and resumable from any offset, re-attached after a daemon restart.' },
      ],
    },
  });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  await app.register(async (api) => {
    await api.register(hostRoutes, { services: opts.services, stats });
    await api.register(vmRoutes, { services: opts.services });
    await api.register(consoleRoutes, { services: opts.services });
    await api.register(eventRoutes, { services: opts.services, streams: stats.streams });
    await api.register(webhookRoutes, { services: opts.services });
    await api.register(snapshotRoutes, { services: opts.services });
    await api.register(machineRoutes, { services: opts.services });
    await api.register(bundleRoutes, { services: opts.services });
    await api.register(downloadRoutes, { services: opts.services });
    await api.register(agentRoutes, { services: opts.services });
    await api.register(fileContentRoutes, { services: opts.services });
    await api.register(launchRoutes, { services: opts.services });
    await api.register(logRoutes, { services: opts.services });
    await api.register(screenRoutes, { services: opts.services });
    await api.register(jobRoutes, { services: opts.services });
    await api.register(waitRoutes, { services: opts.services });
    await api.register(forkRoutes, { services: opts.services });
    await api.register(docsRoutes);
    await api.register(sessionRoutes, { token: opts.token, sessions });
  }, { prefix: '/api/v1' });
  await app.register(mcpRoutes, { services: opts.services, lanes });
  await app.register(webRoutes);

  for (const p of opts.plugins ?? []) await p(app);
  return app;
}

interface OpenApiDoc {
  paths?: Record<string, Record<string, { requestBody?: { required?: boolean; content?: Record<string, { schema?: { required?: unknown[] } }> } }>>;
}

/** Action bodies whose fields are all optional may be left out entirely; say so in the document. */
function optionalEmptyBodies(doc: OpenApiDoc): OpenApiDoc {
  for (const ops of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      const rb = op?.requestBody;
      if (!rb?.content) continue;
      const schemas = Object.values(rb.content).map((c) => c.schema);
      if (schemas.every((s) => !s?.required || s.required.length === 0)) rb.required = false;
    }
  }
  return doc;
}

/** Up to this much of a body refused for its size is still read before answering (see drainRefusedBody). */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/**
 * Fastify answers 413 without reading the body and closes the connection. A client still writing then
 * gets a reset instead of the answer (a "fetch failed" with no 413). A body of known, bounded length is
 * read and dropped instead, with the connection kept, so the client always sees the problem; a larger or
 * unbounded one is still cut off.
 */
function drainRefusedBody(req: FastifyRequest, reply: FastifyReply): void {
  const length = Number(req.headers['content-length']);
  if (!Number.isSafeInteger(length) || length > DRAIN_LIMIT) return;
  reply.removeHeader('connection');
  req.raw.resume();
}

/** Route patterns by method, so a wrong method on a known path is a 405 naming the right ones. */
function routeTable(app: FastifyInstance) {
  const routes: { re: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const url = r.url.replace(/\/+$/, '');
    const re = new RegExp(`^${url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}/?$`);
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ re, method: m });
  });
  return {
    methodsFor(path: string): string[] {
      return [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))].sort();
    },
  };
}
