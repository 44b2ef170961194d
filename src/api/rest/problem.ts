import type { ServerResponse } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type ErrorCode } from '../../domain/errors.js';
import { NO_CONTROL_MESSAGE, NO_CONTROL_PATTERN } from '../schemas/common.js';

type Code = ErrorCode | 'METHOD_NOT_ALLOWED';

/** The one place a failure kind becomes an HTTP status (Incus's response/smart.go). */
const STATUS: Record<Code, number> = {
  VALIDATION_FAILED: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, FORBIDDEN_PATH: 403, NOT_FOUND: 404, VM_NOT_FOUND: 404,
  INVALID_STATE: 409, CONFLICT: 409, OPERATION_IN_PROGRESS: 409, PAYLOAD_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415,
  METHOD_NOT_ALLOWED: 405, INSUFFICIENT_STORAGE: 507, TIMEOUT: 504, QEMU_FAILED: 502, GUEST_AGENT_UNAVAILABLE: 409, INTERNAL: 500,
  DISTRO_NOT_FOUND: 404, DOWNLOAD_FAILED: 502, CHECKSUM_MISMATCH: 502, CHECKSUM_UNAVAILABLE: 502, DOWNLOAD_CANCELLED: 409,
  GUEST_COMMAND_FAILED: 502,
  UNSUPPORTED_PATTERN: 400, FILE_EXISTS: 409,
};

const TITLE: Record<Code, string> = {
  VALIDATION_FAILED: 'Invalid input', UNAUTHORIZED: 'Unauthorized', FORBIDDEN: 'Forbidden', FORBIDDEN_PATH: 'Path not allowed',
  NOT_FOUND: 'Not found', VM_NOT_FOUND: 'VM not found', INVALID_STATE: 'Invalid state for this operation', CONFLICT: 'Conflict',
  OPERATION_IN_PROGRESS: 'Another operation is in progress', PAYLOAD_TOO_LARGE: 'Payload too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type', INSUFFICIENT_STORAGE: 'Insufficient storage', METHOD_NOT_ALLOWED: 'Method not allowed', TIMEOUT: 'Timed out',
  QEMU_FAILED: 'QEMU failed', GUEST_AGENT_UNAVAILABLE: 'Guest agent unavailable', INTERNAL: 'Internal error',
  DISTRO_NOT_FOUND: 'Distro not found', DOWNLOAD_FAILED: 'Download failed', CHECKSUM_MISMATCH: 'Checksum mismatch',
  CHECKSUM_UNAVAILABLE: 'Checksum unavailable', DOWNLOAD_CANCELLED: 'Download cancelled',
  GUEST_COMMAND_FAILED: 'Guest command failed',
  UNSUPPORTED_PATTERN: 'Unsupported pattern', FILE_EXISTS: 'File exists',
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: Code;
  [k: string]: unknown;
}

export function problem(code: Code, detail: string, extra: Record<string, unknown> = {}): ProblemBody {
  return {
    ...extra,
    type: `urn:grove:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLE[code],
    status: STATUS[code],
    detail,
    code,
  };
}

export function sendProblem(reply: FastifyReply, body: ProblemBody): FastifyReply {
  return reply.code(body.status).type('application/problem+json').send(body);
}

/** sendProblem on a bare Node response (the fast lane's): the same status, headers and body. */
export function writeProblem(res: ServerResponse, body: ProblemBody): void {
  const json = JSON.stringify(body);
  res.writeHead(body.status, { 'content-type': 'application/problem+json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

interface AjvError { instancePath?: string; message?: string; params?: Record<string, unknown> }

/** `/name` of the property an Ajv error is about (additional or missing), or nothing. */
function propertyStep(v: AjvError, param: 'additionalProperty' | 'missingProperty'): string {
  const name = v.params?.[param];
  return typeof name === 'string' && name !== '' ? `/${name}` : '';
}

/** Turns anything thrown in a route (or an MCP tool, which has no HTTP request) into a problem; only a genuine bug becomes a 500. */
export function toProblem(err: unknown, req?: Pick<FastifyRequest, 'headers'>): ProblemBody {
  if (err instanceof DomainError) return problem(err.code, err.message, err.extra);
  const fe = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fe.validation) {
    const where = fe.validationContext ?? 'input';
    const errors = fe.validation.map((v) => ({
      path: `${where}${v.instancePath ?? ''}${propertyStep(v, 'additionalProperty')}${propertyStep(v, 'missingProperty')}`,
      message: v.params?.['pattern'] === NO_CONTROL_PATTERN ? NO_CONTROL_MESSAGE : v.message ?? 'is invalid',
    }));
    const detail = errors.map((e) => `${e.path} ${e.message}`).join('; ');
    return problem('VALIDATION_FAILED', detail, { errors });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem('UNSUPPORTED_MEDIA_TYPE', `content type '${req?.headers['content-type'] ?? ''}' is not accepted here; send application/json`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem('PAYLOAD_TOO_LARGE', 'request body is larger than this endpoint accepts');
    // A full disk under the database or a file an operation writes: the host's lack of room, not a bug.
    case 'SQLITE_FULL':
    case 'ENOSPC':
      return problem('INSUFFICIENT_STORAGE', 'the disk holding the data folder is full; free some space and retry');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem('VALIDATION_FAILED', `body is not valid JSON: ${fe.message}`);
    default:
      break;
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { ...problem('VALIDATION_FAILED', fe.message), status: fe.statusCode };
  }
  return problem('INTERNAL', 'internal error; see the daemon log');
}
