import type { FastifySchemaCompiler } from 'fastify';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';

/**
 * Route schemas compiled on their route's first request, not at start. Fastify compiles a validator for
 * every request part and a fast-json-stringify serializer for every response of every route when the app
 * starts: about 150 routes, most of which a given daemon never serves, held in memory as generated code
 * (a fifth of the daemon's idle resident set, see BENCHMARKS.md "Footprint"). Each compiled function is
 * kept once made, so a route pays the compile once, on its first use, as it paid it at start before.
 */

type Validate = ReturnType<FastifySchemaCompiler<unknown>> & { schemaEnv?: boolean };

export function lazyValidatorCompiler<T>(compile: FastifySchemaCompiler<T>): FastifySchemaCompiler<T> {
  return (route) => {
    let fn: Validate | null = null;
    const validate: Validate = (data: unknown, ctx?: unknown) => {
      fn ??= compile(route);
      const ok = (fn as (data: unknown, ctx?: unknown) => ReturnType<Validate>)(data, ctx);
      // Fastify reads the errors from the function it was given.
      validate.errors = fn.errors ?? null;
      return ok;
    };
    // Fastify passes the parent (the request) only to a function that has this, as an Ajv validator has:
    // Ajv can then replace a coerced root value, as it could when compiled at start.
    validate.schemaEnv = true;
    return validate;
  };
}

/**
 * Fastify's own serializer factory (fast-json-stringify with the shared schemas), each compile deferred.
 * Each compile gets its own copy of the shared schemas and of the route's: fast-json-stringify changes the
 * schemas it is given (a route may answer with a shared schema itself, `$id` and all), so one route's compile broke the next's references (`Download#` not found after POST /downloads
 * had been answered) once the compiles no longer all ran at start in Fastify's order.
 */
export function lazySerializerFactory(): SerializerSelector.SerializerFactory {
  const eager = SerializerSelector();
  return (externalSchemas, options) => (route) => {
    let fn: SerializerSelector.Serializer | null = null;
    return (data: unknown) => (fn ??= eager(structuredClone(externalSchemas), options)({ ...route, schema: structuredClone(route.schema) }))(data);
  };
}
