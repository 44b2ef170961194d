import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A package loaded when first used, not when the daemon starts: for packages only some requests need
 * (the regex engine, YAML, image codecs, tar). Each one loaded at start costs every daemon its source,
 * its module-level tables and their heap, whether or not the feature is ever used (BENCHMARKS.md,
 * "Footprint"). Resolved at run time from this file's place in dist/src, so the daemon bundle leaves these
 * packages out and loads them from node_modules on that first use.
 */
export function loadOnFirstUse<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
