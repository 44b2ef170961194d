import { Type, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES as DOMAIN_ERROR_CODES } from '../../domain/errors.js';

/** The domain's codes plus the one only the HTTP layer raises. */
export const ERROR_CODES = [...DOMAIN_ERROR_CODES, 'METHOD_NOT_ALLOWED'] as const;

/** RFC 9457 problem details, with Grove's stable `code` and any extra facts (e.g. the VM's state). */
export const Problem = Type.Object({
  type: Type.String({ description: 'URI reference naming the problem kind', examples: ['urn:grove:problem:invalid-state'] }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c)), { description: 'Stable machine-readable code' }),
  instance: Type.Optional(Type.String()),
  state: Type.Optional(Type.String({ description: 'Current VM state, for INVALID_STATE' })),
  allowedStates: Type.Optional(Type.Array(Type.String())),
  field: Type.Optional(Type.String({ description: 'The input field at fault' })),
  errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
}, { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' });

const problemContent = { content: { 'application/problem+json': { schema: Type.Ref(Problem) } } };

/** The response map of a route: its success schema plus the problem shapes it can answer with. */
export function responses(ok: Record<number, TSchema | null>, errors: number[], opts: { public?: boolean } = {}): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const [status, schema] of Object.entries(ok)) {
    out[Number(status)] = schema ?? { type: 'null', description: 'No content' };
  }
  const always = opts.public ? [400, 403, 500] : [400, 401, 403, 500];
  for (const s of new Set([...always, ...errors])) out[s] = { description: STATUS_TEXT[s] ?? 'Error', ...problemContent };
  return out;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid input (VALIDATION_FAILED)', 401: 'Missing or wrong token (UNAUTHORIZED)',
  403: 'Host/Origin refused or path outside allowed folders (FORBIDDEN, FORBIDDEN_PATH)', 404: 'Not found (VM_NOT_FOUND, NOT_FOUND, DISTRO_NOT_FOUND)',
  409: 'Wrong state or conflicting operation (INVALID_STATE, CONFLICT, OPERATION_IN_PROGRESS, GUEST_AGENT_UNAVAILABLE)', 413: 'Body too large',
  415: 'Unsupported media type', 500: 'Internal error', 502: 'QEMU or the guest failed (QEMU_FAILED, GUEST_COMMAND_FAILED)', 507: 'No room on the host (INSUFFICIENT_STORAGE)', 504: 'Timed out (TIMEOUT)',
};

/**
 * No C0 control character (NUL, tab, newline, ESC…) and no DEL: the rule for every value that reaches
 * QEMU's or qemu-img's command line (paths, the kernel command line). NUL cannot be passed in argv at
 * all, and a newline in `-append` makes a VM that can never start.
 */
export const NO_CONTROL_PATTERN = '^[^\\u0000-\\u001f\\u007f]*$';
export const NO_CONTROL_MESSAGE = 'must not contain control characters (NUL, tab, newline or any other below U+0020, or DEL)';

/** A string that may reach a command line: `pattern` says so in OpenAPI, and the validator enforces it. */
export function ArgvString(opts: { minLength?: number; maxLength: number; description: string }) {
  return Type.String({ ...opts, pattern: NO_CONTROL_PATTERN, description: `${opts.description} (no control characters)` });
}

export const VmRefParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'VM id (UUID) or name' }),
}, { additionalProperties: false });

export const Empty = Type.Object({}, { additionalProperties: false });
