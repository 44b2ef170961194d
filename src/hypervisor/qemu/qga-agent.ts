import {
  GuestAgentUnavailableError, GuestCommandError, type GuestAgent, type GuestAgentConnector, type GuestExecStatus, type GuestInterface, type GuestOsInfo,
} from '../../ports/guest-agent.js';
import { QgaClient, QgaCommandError, QgaError, type QgaClientOptions } from './qga/index.js';
import * as qga from './qga/commands.js';

/** strerror() texts the agent appends to its errors (glibc, C locale), by errno name. */
const ERRNO_TEXT: [string, string][] = [
  ['No such file or directory', 'ENOENT'], ['File exists', 'EEXIST'], ['Permission denied', 'EACCES'],
  ['Operation not permitted', 'EPERM'], ['Is a directory', 'EISDIR'], ['Not a directory', 'ENOTDIR'],
  ['No space left on device', 'ENOSPC'], ['Read-only file system', 'EROFS'], ['Directory not empty', 'ENOTEMPTY'],
  ['Text file busy', 'ETXTBSY'], ['Exec format error', 'ENOEXEC'], ['File name too long', 'ENAMETOOLONG'],
  ['Disk quota exceeded', 'EDQUOT'], ['Invalid argument', 'EINVAL'], ['Too many open files', 'EMFILE'],
];

export function errnoOf(desc: string): string | null {
  for (const [text, name] of ERRNO_TEXT) if (desc.includes(text)) return name;
  return null;
}

/** Every failure leaves as one of the port's two errors. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof QgaCommandError) throw new GuestCommandError(e.command, e.desc, errnoOf(e.desc));
    if (e instanceof QgaError) throw new GuestAgentUnavailableError(e.message);
    throw e;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

class QgaAgent implements GuestAgent {
  constructor(private readonly c: QgaClient) {}

  ping(): Promise<void> { return call(() => this.c.sync()); }
  info(): Promise<{ version: string }> { return call(async () => ({ version: (await qga.info(this.c)).version })); }
  hostName(): Promise<string> { return call(() => qga.hostName(this.c)); }

  osInfo(): Promise<GuestOsInfo> {
    return call(async () => {
      const o = await qga.osInfo(this.c);
      return {
        id: str(o.id), name: str(o.name), prettyName: str(o['pretty-name']), version: str(o.version), versionId: str(o['version-id']),
        kernelRelease: str(o['kernel-release']), kernelVersion: str(o['kernel-version']), machine: str(o.machine),
      };
    });
  }

  interfaces(): Promise<GuestInterface[]> {
    return call(async () => (await qga.networkInterfaces(this.c)).map((i) => ({
      name: i.name,
      mac: str(i['hardware-address']),
      addresses: (i['ip-addresses'] ?? []).map((a) => ({ family: a['ip-address-type'], address: a['ip-address'], prefix: a.prefix })),
    })));
  }

  exec(req: { path: string; args: string[]; input?: Buffer; captureOutput: boolean }): Promise<number> {
    return call(() => qga.exec(this.c, {
      path: req.path, args: req.args, captureOutput: req.captureOutput,
      ...(req.input !== undefined ? { inputBase64: req.input.toString('base64') } : {}),
    }));
  }

  execStatus(pid: number): Promise<GuestExecStatus> {
    return call(async () => {
      const s = await qga.execStatus(this.c, pid);
      return {
        exited: s.exited, exitCode: s.exitcode ?? null, signal: s.signal ?? null,
        stdout: Buffer.from(s['out-data'] ?? '', 'base64'), stderr: Buffer.from(s['err-data'] ?? '', 'base64'),
        stdoutTruncated: s['out-truncated'] === true, stderrTruncated: s['err-truncated'] === true,
      };
    });
  }

  fileOpen(path: string, mode: string): Promise<number> { return call(() => qga.fileOpen(this.c, path, mode)); }
  fileClose(handle: number): Promise<void> { return call(() => qga.fileClose(this.c, handle)); }
  fileSeek(handle: number, offset: number, from: 'start' | 'end' = 'start'): Promise<number> {
    return call(async () => (await qga.fileSeek(this.c, handle, offset, from === 'end' ? 'end' : 'set')).position);
  }

  fileRead(handle: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
    return call(async () => {
      const r = await qga.fileRead(this.c, handle, count);
      return { data: Buffer.from(r['buf-b64'], 'base64'), eof: r.eof };
    });
  }

  fileWrite(handle: number, data: Buffer): Promise<number> {
    return call(async () => (await qga.fileWrite(this.c, handle, data.toString('base64'))).count);
  }

  freezeFilesystems(): Promise<number> { return call(() => qga.fsfreezeFreeze(this.c)); }
  thawFilesystems(): Promise<number> { return call(() => qga.fsfreezeThaw(this.c)); }
  filesystemsFrozen(): Promise<boolean> { return call(async () => (await qga.fsfreezeStatus(this.c)) === 'frozen'); }
  shutdown(): Promise<void> { return call(() => qga.shutdown(this.c, 'powerdown')); }
  close(): Promise<void> { return this.c.close(); }
}

export class QgaAgentConnector implements GuestAgentConnector {
  constructor(private readonly opts: QgaClientOptions = {}) {}

  open(socketPath: string): GuestAgent {
    return new QgaAgent(new QgaClient(socketPath, this.opts));
  }
}
