/**
 * The QEMU guest agent of one VM, as the app needs it: typed requests, bytes as Buffers, and two kinds of
 * failure. Requests to one VM's agent run one at a time in the order they were made.
 */
export interface GuestAgent {
  /** A fresh handshake: resolves only if an agent answers now. */
  ping(): Promise<void>;
  info(): Promise<{ version: string }>;
  osInfo(): Promise<GuestOsInfo>;
  hostName(): Promise<string>;
  interfaces(): Promise<GuestInterface[]>;
  /** Starts a process (`path` searched in the agent's PATH); resolves with its pid. */
  exec(req: { path: string; args: string[]; input?: Buffer; captureOutput: boolean }): Promise<number>;
  execStatus(pid: number): Promise<GuestExecStatus>;
  /** `mode`: an fopen() mode (r, w, a, r+, w+, a+). Resolves with a handle. */
  fileOpen(path: string, mode: string): Promise<number>;
  fileRead(handle: number, count: number): Promise<{ data: Buffer; eof: boolean }>;
  fileWrite(handle: number, data: Buffer): Promise<number>;
  fileClose(handle: number): Promise<void>;
  /**
   * Sets the position from the start (or the end) of the file; resolves with it. Also clears a reached end of file:
   * qemu-ga reads with fread(), whose end-of-file is sticky, so a file that grows is read on after a seek.
   */
  fileSeek(handle: number, offset: number, from?: 'start' | 'end'): Promise<number>;
  /** Freezes the guest's filesystems; resolves with how many. */
  freezeFilesystems(): Promise<number>;
  thawFilesystems(): Promise<number>;
  filesystemsFrozen(): Promise<boolean>;
  /** Asks the guest OS to power off. */
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

export interface GuestAgentConnector {
  /** A client of the agent behind a VM's channel socket; connects lazily, reconnects by itself. */
  open(socketPath: string): GuestAgent;
}

export interface GuestOsInfo {
  id: string | null;
  name: string | null;
  prettyName: string | null;
  version: string | null;
  versionId: string | null;
  kernelRelease: string | null;
  kernelVersion: string | null;
  machine: string | null;
}

export interface GuestInterface {
  name: string;
  mac: string | null;
  addresses: { family: 'ipv4' | 'ipv6'; address: string; prefix: number }[];
}

export interface GuestExecStatus {
  exited: boolean;
  exitCode: number | null;
  signal: number | null;
  stdout: Buffer;
  stderr: Buffer;
  /** The agent itself cut the output (qemu-ga keeps at most 16 MiB per stream). */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/**
 * No agent answers: no channel (QEMU gone), no answer to the handshake (no agent in the guest), no answer
 * to a request in time (an agent that stopped answering), or the channel closed while waiting.
 */
export class GuestAgentUnavailableError extends Error {
  override name = 'GuestAgentUnavailableError';
}

/** The agent answered, with an error. `errno` is the error's name when the agent reported one (ENOENT, ...). */
export class GuestCommandError extends Error {
  override name = 'GuestCommandError';
  constructor(
    readonly command: string,
    readonly desc: string,
    readonly errno: string | null,
  ) {
    super(desc);
  }
}
