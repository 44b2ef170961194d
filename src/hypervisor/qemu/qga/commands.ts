import type { QgaClient } from './client.js';

/**
 * Typed guest agent commands (QEMU 7.2's qga/qapi-schema.json), with the timeouts each deserves: a
 * quick query is given a few seconds (an agent that stops answering is reported fast), work that runs
 * in the guest (freezing filesystems, reading a chunk of a file) more.
 */
export const QGA_TIMEOUTS = { query: 5_000, io: 30_000, freeze: 60_000 } as const;

export interface QgaInfo {
  version: string;
  supported_commands: { name: string; enabled: boolean; 'success-response': boolean }[];
}

export interface QgaOsInfo {
  'kernel-release'?: string;
  'kernel-version'?: string;
  machine?: string;
  id?: string;
  name?: string;
  'pretty-name'?: string;
  version?: string;
  'version-id'?: string;
  variant?: string;
  'variant-id'?: string;
}

export interface QgaIpAddress {
  'ip-address-type': 'ipv4' | 'ipv6';
  'ip-address': string;
  prefix: number;
}

export interface QgaInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: QgaIpAddress[];
}

export interface QgaExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

export interface QgaFileRead {
  count: number;
  'buf-b64': string;
  eof: boolean;
}

export const ping = (c: QgaClient): Promise<void> => c.execute('guest-ping', undefined, { timeoutMs: QGA_TIMEOUTS.query }).then(() => undefined);
export const info = (c: QgaClient): Promise<QgaInfo> => c.execute('guest-info', undefined, { timeoutMs: QGA_TIMEOUTS.query });
export const osInfo = (c: QgaClient): Promise<QgaOsInfo> => c.execute('guest-get-osinfo', undefined, { timeoutMs: QGA_TIMEOUTS.query });
export const hostName = async (c: QgaClient): Promise<string> =>
  (await c.execute<{ 'host-name': string }>('guest-get-host-name', undefined, { timeoutMs: QGA_TIMEOUTS.query }))['host-name'];
export const networkInterfaces = (c: QgaClient): Promise<QgaInterface[]> =>
  c.execute('guest-network-get-interfaces', undefined, { timeoutMs: QGA_TIMEOUTS.query });

/** Starts a process in the guest; `path` is searched in the agent's PATH. Resolves with its pid. */
export async function exec(c: QgaClient, req: { path: string; args: string[]; env?: string[]; inputBase64?: string; captureOutput: boolean }): Promise<number> {
  const args: Record<string, unknown> = { path: req.path, arg: req.args, 'capture-output': req.captureOutput };
  if (req.env) args.env = req.env;
  if (req.inputBase64 !== undefined) args['input-data'] = req.inputBase64;
  return (await c.execute<{ pid: number }>('guest-exec', args, { timeoutMs: QGA_TIMEOUTS.query })).pid;
}

/** Its answer carries the captured output (up to 2 × 16 MiB as base64): given the time of a file chunk, not of a query. */
export const execStatus = (c: QgaClient, pid: number): Promise<QgaExecStatus> =>
  c.execute('guest-exec-status', { pid }, { timeoutMs: QGA_TIMEOUTS.io });

/** `mode` is an fopen() mode the agent knows: r, w, a, r+, w+, a+ (with optional b). */
export const fileOpen = (c: QgaClient, path: string, mode: string): Promise<number> =>
  c.execute('guest-file-open', { path, mode }, { timeoutMs: QGA_TIMEOUTS.query });
export const fileRead = (c: QgaClient, handle: number, count: number): Promise<QgaFileRead> =>
  c.execute('guest-file-read', { handle, count }, { timeoutMs: QGA_TIMEOUTS.io });
export const fileWrite = (c: QgaClient, handle: number, dataBase64: string): Promise<{ count: number; eof: boolean }> =>
  c.execute('guest-file-write', { handle, 'buf-b64': dataBase64 }, { timeoutMs: QGA_TIMEOUTS.io });
/** Moves a handle's position (fseek, which also clears a reached end of file so later reads see appended data). */
export const fileSeek = (c: QgaClient, handle: number, offset: number, whence: 'set' | 'end' = 'set'): Promise<{ position: number; eof: boolean }> =>
  c.execute('guest-file-seek', { handle, offset, whence }, { timeoutMs: QGA_TIMEOUTS.query });
export const fileClose = (c: QgaClient, handle: number): Promise<void> =>
  c.execute('guest-file-close', { handle }, { timeoutMs: QGA_TIMEOUTS.io }).then(() => undefined);

/** Freezes every freezable filesystem; resolves with how many were frozen. */
export const fsfreezeFreeze = (c: QgaClient): Promise<number> => c.execute('guest-fsfreeze-freeze', undefined, { timeoutMs: QGA_TIMEOUTS.freeze });
export const fsfreezeThaw = (c: QgaClient): Promise<number> => c.execute('guest-fsfreeze-thaw', undefined, { timeoutMs: QGA_TIMEOUTS.freeze });
export const fsfreezeStatus = (c: QgaClient): Promise<'thawed' | 'frozen'> => c.execute('guest-fsfreeze-status', undefined, { timeoutMs: QGA_TIMEOUTS.query });

/** Asks the guest OS to power off (`powerdown`) or reboot; the agent answers only when it cannot. */
export const shutdown = (c: QgaClient, mode: 'powerdown' | 'reboot' | 'halt'): Promise<void> =>
  c.execute('guest-shutdown', { mode }, { noReply: true }).then(() => undefined);
