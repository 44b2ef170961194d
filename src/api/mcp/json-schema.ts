import type { TSchema } from '@sinclair/typebox';
import { SHARED_SCHEMAS } from '../schemas/shared.js';

/** Shared schemas that REST refers to by `$id` (`Type.Ref(Vm)`); a tool schema must stand alone. */
const SHARED: Record<string, TSchema> = Object.fromEntries(SHARED_SCHEMAS.map((s) => [s.$id!, s]));

export type JsonSchema = { [k: string]: unknown };

/**
 * A TypeBox schema as the plain JSON Schema MCP clients expect: TypeBox's symbol keys dropped, `$ref`s to
 * shared schemas inlined (an MCP tool schema has no registry to resolve them against) and `$id`s removed.
 */
export function toJsonSchema(schema: TSchema): JsonSchema {
  return inline(JSON.parse(JSON.stringify(schema)) as unknown, []) as JsonSchema;
}

function inline(node: unknown, seen: string[]): unknown {
  if (Array.isArray(node)) return node.map((n) => inline(n, seen));
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  const ref = obj['$ref'];
  if (typeof ref === 'string') {
    const target = SHARED[ref];
    if (!target) throw new Error(`schema refers to unknown shared schema '${ref}'`);
    if (seen.includes(ref)) throw new Error(`schema '${ref}' refers to itself; it cannot be inlined`);
    const { $ref: _ref, ...rest } = obj;
    return { ...(inline(JSON.parse(JSON.stringify(target)), [...seen, ref]) as object), ...rest };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === '$id') continue;
    out[k] = inline(v, seen);
  }
  return out;
}
