import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { Problem } from '../schemas/common.js';
import { EventEnvelope } from '../schemas/events.js';
import { Vm } from '../schemas/vm.js';
import type { ApiServices } from './context.js';
import { consoleRoutes } from './console-routes.js';
import { docsRoutes } from './docs-routes.js';
import { hostRoutes } from './host-routes.js';
import { problem, sendProblem, toProblem } from './problem.js';
import { registerSecurity } from './security.js';
import { vmRoutes } from './vm-routes.js';
import { eventRoutes } from '../stream/event-routes.js';

export interface AppOptions {
  services: ApiServices;
  token: string;
  allowedHosts?: string[];
  logger?: FastifyBaseLogger;
  /** The extra surfaces (MCP, webhooks) register themselves here without the REST layer knowing them. */
  plugins?: ((app: FastifyInstance) => Promise<void>)[];
}

const PUBLIC_PATHS = new Set(['/api/v1/health', '/api/v1/openapi.json', '/api/v1/docs']);
const BODY_LIMIT = 1024 * 1024;

/**
 * Query strings and path params arrive as text and are coerced to their declared types; bodies are JSON
 * and validated strictly — a wrong type or an unknown field is a 400, never silently fixed or dropped.
 */
function validators() {
  const make = (coerce: boolean) => {
    const ajv = new Ajv({ coerceTypes: coerce ? 'array' : false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
    addFormats.default(ajv);
    return ajv;
  };
  return { body: make(false), other: make(true) };
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // Per-request lines would drown the log (and cost throughput); errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // Open SSE streams and WebSockets would otherwise hold close() forever.
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false } },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
  });

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.other).compile(schema));

  // An empty body with a JSON content type is taken as "no options", as curl -H 'content-type: application/json' -X POST sends.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (req, body, done) => {
    if (typeof body === 'string' && body.trim() === '') { done(null, undefined); return; }
    jsonParser(req, body as string, done);
  });
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && (req.method === 'POST' || req.method === 'PATCH' || req.method === 'PUT')) {
      (req as { body: unknown }).body = {};
    }
  });

  app.setErrorHandler(async (err, req, reply) => {
    const p = toProblem(err, req);
    if (p.status >= 500 && p.code === 'INTERNAL') req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, p);
  });
  app.setNotFoundHandler(async (req, reply) => sendProblem(reply, problem('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  registerSecurity(app, { token: opts.token, allowedHosts: opts.allowedHosts ?? [], publicPaths: PUBLIC_PATHS });

  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Grove API',
        version: opts.services.version,
        description: 'Headless QEMU VM manager. Every endpoint except health, openapi.json and docs needs `Authorization: Bearer <token>`. Errors are RFC 9457 problem+json with a stable `code`. Wherever a path has `:id`, the VM id or its name is accepted.',
      },
      servers: [{ url: '/' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'VMs' }, { name: 'Lifecycle' }, { name: 'Console' }, { name: 'Events' }, { name: 'Host' },
      ],
    },
  });
  for (const schema of [Problem, Vm, EventEnvelope]) app.addSchema(schema);

  await app.register(async (api) => {
    await api.register(hostRoutes, { services: opts.services });
    await api.register(vmRoutes, { services: opts.services });
    await api.register(consoleRoutes, { services: opts.services });
    await api.register(eventRoutes, { services: opts.services });
    await api.register(docsRoutes);
  }, { prefix: '/api/v1' });

  for (const p of opts.plugins ?? []) await p(app);
  return app;
}
