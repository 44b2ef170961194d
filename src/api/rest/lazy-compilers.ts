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

/** Fastify's own serializer factory (fast-json-stringify with the shared schemas), each compile deferred. */
export function lazySerializerFactory(): SerializerSelector.SerializerFactory {
  const eager = SerializerSelector();
  return (externalSchemas, options) => {
    const compile = eager(externalSchemas, options);
    return (route) => {
      let fn: SerializerSelector.Serializer | null = null;
      return (data: unknown) => (fn ??= compile(route))(data);
    };
  };
}
