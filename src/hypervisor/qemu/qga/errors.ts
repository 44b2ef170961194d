/** Base class of every error raised by the guest agent client. */
export class QgaError extends Error {
  override name = 'QgaError';
}

/** The agent answered a command with `{"error": {"class", "desc"}}`. */
export class QgaCommandError extends QgaError {
  override name = 'QgaCommandError';
  constructor(
    readonly command: string,
    /** QAPI error class, e.g. `GenericError`, `CommandNotFound`. */
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`guest agent command '${command}' failed: ${desc}`);
  }
}

/**
 * No agent answered: the socket is missing or refuses connections (QEMU is not running), or the
 * `guest-sync-delimited` handshake got no answer in time (no agent runs in the guest: QEMU keeps the host
 * side of the channel open and simply never replies).
 */
export class QgaUnavailableError extends QgaError {
  override name = 'QgaUnavailableError';
}

/** A command that was sent got no reply in time; the client resynchronises before the next one. */
export class QgaTimeoutError extends QgaError {
  override name = 'QgaTimeoutError';
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`guest agent did not answer '${command}' within ${timeoutMs} ms`);
  }
}

/** The connection went away while a command waited (QEMU exited), or the client was closed. */
export class QgaClosedError extends QgaError {
  override name = 'QgaClosedError';
}
