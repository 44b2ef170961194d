/**
 * The one catalogue of failure kinds the core can report. Transports map a code to their own
 * vocabulary (HTTP status, MCP isError) in exactly one place each; the core never speaks HTTP.
 */
/** The stable codes a failure carries to clients (the wire schema's enum is built from this list). */
export const ERROR_CODES = [
  'VALIDATION_FAILED', 'UNAUTHORIZED', 'FORBIDDEN', 'FORBIDDEN_PATH', 'NOT_FOUND', 'VM_NOT_FOUND', 'INVALID_STATE',
  'CONFLICT', 'OPERATION_IN_PROGRESS', 'TIMEOUT', 'QEMU_FAILED', 'GUEST_AGENT_UNAVAILABLE', 'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE', 'INSUFFICIENT_STORAGE', 'INTERNAL',
  // Distro images: an unknown catalog id; a transfer that failed (HTTP error, too many drops); a digest
  // that does not match; no digest to check against; a download stopped by a caller.
  'DISTRO_NOT_FOUND', 'DOWNLOAD_FAILED', 'CHECKSUM_MISMATCH', 'CHECKSUM_UNAVAILABLE', 'DOWNLOAD_CANCELLED',
  'GUEST_COMMAND_FAILED',
  // A /regex/ the linear-time matcher cannot run (backreferences, lookaround); a file already at a path
  // the caller named for a new one.
  'UNSUPPORTED_PATTERN', 'FILE_EXISTS',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra machine-readable facts carried to the client (e.g. the current state). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string): DomainError => new DomainError('VM_NOT_FOUND', `no VM named or with id '${what}'`, { vm: what });
export const invalid = (detail: string, extra: Record<string, unknown> = {}): DomainError => new DomainError('VALIDATION_FAILED', detail, extra);
