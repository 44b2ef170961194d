import type { IncomingMessage } from 'node:http';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';

type Done = (err: Error | null, body?: unknown) => void;

/**
 * `application/json` for the routes registered on `app` (an encapsulated plugin: MCP's), by the app-wide
 * rules — the body limit, an empty body taken as "no options", Fastify's own JSON parser refusing
 * prototype poisoning, the same errors — except that a body which has already arrived whole is taken at
 * once. An MCP request is a few hundred bytes sent with its headers, so by the time the route runs Node
 * has buffered all of it; Fastify's stream read (flowing mode, then 'data' and 'end' a tick apart) costs
 * more per call than parsing the JSON. A body still arriving is read as a stream, as Fastify does.
 */
export function readJsonBodies(app: FastifyInstance): void {
  const limit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  const parse = app.getDefaultJsonParser('error', 'error') as (req: FastifyRequest, body: string, done: Done) => void;
  const finish = (req: FastifyRequest, body: Buffer, done: Done): void => {
    const text = body.toString('utf8');
    if (text.trim() === '') { done(null, undefined); return; }
    parse(req, text, done);
  };

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (req, payload, done: Done) => {
    const length = Number(req.headers['content-length']);
    if (length > limit) { done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), undefined); return; }
    const raw = payload as IncomingMessage;
    if (raw === req.raw && raw.readableFlowing === null && length > 0 && raw.readableLength === length) {
      // Every byte content-length announced is in the stream's buffer: read() hands them over in one
      // piece; resume() then lets the stream reach its end as usual ('end', Node's own clean-up).
      const body = raw.read(length) as Buffer;
      raw.resume();
      finish(req, body, done);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = (): void => {
      raw.removeListener('data', onData);
      raw.removeListener('end', onEnd);
      raw.removeListener('error', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) { stop(); done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), undefined); return; }
      chunks.push(chunk);
    };
    const onEnd = (err?: Error & { statusCode?: number }): void => {
      stop();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        done(err, undefined);
        return;
      }
      if (!Number.isNaN(length) && received !== length) { done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), undefined); return; }
      finish(req, Buffer.concat(chunks, received), done);
    };
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.on('error', onEnd);
    raw.resume();
  });
}
