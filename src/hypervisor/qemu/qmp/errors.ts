/** Base class of every error raised by the QMP client. */
export class QmpError extends Error {
  override name = 'QmpError';
}

/** QEMU answered a command with `{"error": {"class", "desc"}}`. */
export class QmpCommandError extends QmpError {
  override name = 'QmpCommandError';
  constructor(
    readonly command: string,
    /** QAPI error class, e.g. `GenericError`, `CommandNotFound`, `DeviceNotFound`. */
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP command '${command}' failed: ${errorClass}: ${desc}`);
  }
}

/**
 * No answer within the allotted time. `command` names what was awaited: a QMP
 * command, `connect`, `event:<NAME>` or `job:<id>`.
 */
export class QmpTimeoutError extends QmpError {
  override name = 'QmpTimeoutError';
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    detail?: string,
  ) {
    super(`QMP '${command}' timed out after ${timeoutMs} ms${detail ? ` (${detail})` : ''}`);
  }
}

/** The connection is gone (closed locally, QEMU exited, or a socket error). */
export class QmpClosedError extends QmpError {
  override name = 'QmpClosedError';
  constructor(message = 'QMP connection closed', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** QEMU sent something that is not valid QMP (bad greeting, non-JSON, oversize line). */
export class QmpProtocolError extends QmpError {
  override name = 'QmpProtocolError';
}

/** A background job (e.g. snapshot-save) concluded with an error. */
export class QmpJobError extends QmpError {
  override name = 'QmpJobError';
  constructor(
    readonly jobId: string,
    readonly jobType: string,
    /** QEMU's human-readable reason from `query-jobs`. */
    readonly desc: string,
  ) {
    super(`QMP job '${jobId}' (${jobType}) failed: ${desc}`);
  }
}
