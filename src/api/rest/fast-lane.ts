import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { FastifyServerOptions } from 'fastify';
import { toProblem, writeProblem } from './problem.js';
import type { AccessInput, Refusal, RouteSecurity } from './security.js';

/**
 * Answers one request whose JSON body has been read and parsed. It answers `res` itself, its own
 * failures included; a throw or a rejection is a bug (logged, answered 500).
 */
export type LaneHandler = (req: IncomingMessage, res: ServerResponse, body: unknown) => void | Promise<void>;

interface Lane { flags: RouteSecurity; handler: LaneHandler }

/** What the lanes share with the app: the same access decision, body rules and request statistics. */
export interface LaneContext {
  access: (r: AccessInput) => Refusal | null;
  bodyLimit: number;
  /** The app's JSON body rules (blank is undefined, the app's parse errors). */
  parseJson: (text: string, done: (err: Error | null, body?: unknown) => void) => void;
  record: (method: string, route: string, status: number, seconds: number) => void;
  logBug: (err: unknown, route: string) => void;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * POST paths answered straight from Node's 'request' event, before Fastify builds its request and reply
 * and runs routing, hooks and the body parser for them: about 20 µs of CPU per request, as much as the
 * MCP call itself costs (BENCHMARKS.md, mcp5). A lane takes only requests that are plainly fine, judged
 * from the headers: the access check passes, the body is JSON of a declared length within the limit,
 * the URL is the path exactly and the daemon is not closing. Everything else (a refusal, another content
 * type, a chunked or oversized body, a query string, a trailing slash) goes to Fastify untouched, where
 * the same route is registered and answers it with the usual problems: errors keep one source.
 */
export class FastLanes {
  private readonly posts = new Map<string, Lane>();
  private closing = false;

  constructor(private readonly ctx: LaneContext) {}

  /** A lane for POSTs to exactly `path`; the route must also be registered with Fastify (see above). */
  post(path: string, flags: RouteSecurity, handler: LaneHandler): void {
    this.posts.set(path, { flags, handler });
  }

  /** From now on every request goes to Fastify, which answers 503 while it closes. */
  close(): void {
    this.closing = true;
  }

  /**
   * Fastify's `serverFactory`: the HTTP(S) server Fastify would build (its options, its timeouts), with
   * the lanes in front of Fastify's own handler.
   */
  serverFactory(): NonNullable<FastifyServerOptions['serverFactory']> {
    return (fastifyHandler, factoryOptions) => {
      // Fastify hands over its own options (the timeouts it would have set, the TLS ones).
      const options = factoryOptions as FastifyServerOptions & { https?: https.ServerOptions | null; http?: http.ServerOptions };
      const listener: Listener = (req, res) => {
        if (req.method === 'POST' && !this.closing) {
          const lane = this.posts.get(req.url ?? '');
          if (lane !== undefined && this.admits(req, lane)) { this.run(req, res, lane); return; }
        }
        fastifyHandler(req, res);
      };
      const server = options.https ? https.createServer(options.https, listener) : http.createServer(options.http ?? {}, listener);
      server.keepAliveTimeout = options.keepAliveTimeout ?? 72_000;
      server.requestTimeout = options.requestTimeout ?? 0;
      server.setTimeout(options.connectionTimeout ?? 0);
      if (options.maxRequestsPerSocket) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
      return server;
    };
  }

  private admits(req: IncomingMessage, lane: Lane): boolean {
    const h = req.headers;
    if (h['transfer-encoding'] !== undefined || h.upgrade !== undefined || h.expect !== undefined) return false;
    if (!isJsonType(h['content-type'])) return false;
    const length = h['content-length'];
    if (length === undefined || !/^[1-9][0-9]{0,8}$/.test(length) || Number(length) > this.ctx.bodyLimit) return false;
    return this.ctx.access({ method: 'POST', headers: h, flags: lane.flags }) === null;
  }

  private run(req: IncomingMessage, res: ServerResponse, lane: Lane): void {
    const path = req.url!;
    const started = performance.now();
    res.once('finish', () => this.ctx.record('POST', path, res.statusCode, (performance.now() - started) / 1000));
    // Node's parser stops at the declared length, so 'end' means the whole body (a client gone early
    // means no 'end', and no one left to answer).
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { chunks.push(c); });
    req.once('end', () => {
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      this.ctx.parseJson(text, (err, body) => {
        if (err) { writeProblem(res, toProblem(err)); return; }
        // A blank body is "no options" ({}), as the app's preValidation hook has it for every POST.
        runOnBare(lane.handler, req, res, body ?? {}, (e) => this.ctx.logBug(e, path));
      });
    });
  }
}

/**
 * Runs a handler that writes on the bare response (a lane's, or a Fastify route's after `reply.hijack()`,
 * where Fastify no longer answers errors): a throw or a rejection is reported and answered with a 500
 * problem, or ends the connection when the answer had already begun.
 */
export function runOnBare(handler: LaneHandler, req: IncomingMessage, res: ServerResponse, body: unknown, onBug: (err: unknown) => void): void {
  const failed = (e: unknown): void => {
    onBug(e);
    if (res.headersSent) res.destroy();
    else writeProblem(res, toProblem(e));
  };
  try {
    const pending = handler(req, res, body);
    if (pending) pending.catch(failed);
  } catch (e) {
    failed(e);
  }
}

/** application/json, bare or with the UTF-8 charset: the forms clients send. Anything else is Fastify's to judge. */
function isJsonType(ct: string | undefined): boolean {
  if (ct === undefined) return false;
  return ct === 'application/json' || /^application\/json\s*;\s*charset="?utf-8"?\s*$/i.test(ct);
}
