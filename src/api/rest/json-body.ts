import type { FastifyInstance, FastifyRequest } from 'fastify';

export type JsonDone = (err: Error | null, body?: unknown) => void;

/**
 * The app's rules for a JSON body's text, for its content-type parser and its fast lanes alike: a blank
 * body is "no options" (undefined; the preValidation hook makes it `{}`), as curl -H 'content-type:
 * application/json' -X POST sends it; anything else goes through Fastify's own parser, which refuses
 * prototype poisoning.
 */
export function jsonBodyReader(app: FastifyInstance): (text: string, done: JsonDone) => void {
  // The default parser calls back at once and ignores the request it is given (the lanes have none).
  const parse = app.getDefaultJsonParser('error', 'error') as (req: FastifyRequest | null, body: string, done: JsonDone) => void;
  return (text, done) => {
    if (text.trim() === '') { done(null, undefined); return; }
    parse(null, text, done);
  };
}
