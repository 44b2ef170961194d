import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { DomainError, invalid } from '../../domain/errors.js';
import type { GuestAgent } from '../../ports/guest-agent.js';
import type { HostFiles } from '../../ports/host-files.js';
import { resolveAllowedPath, resolveNewFileIn } from '../path-guard.js';
import type { AgentService } from './agent-service.js';
import { decodeInput } from './exec-service.js';
import { runInGuest, type RunResult } from './guest-exec.js';
import { EXIT, FINISH_UPLOAD, LIST_DIR, MKDIR, REMOVE, SCRIPT_NAME } from './guest-scripts.js';

/**
 * Bytes per guest-file-read/-write: the agent answers each with the whole chunk as base64 in one JSON
 * message, so larger chunks mean fewer round trips but more memory per request.
 */
export const FILE_CHUNK_BYTES = 4 * 1024 * 1024;

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'char-device' | 'unknown';

export interface GuestEntry {
  name: string;
  type: EntryType;
  size: number;
  /** Permission bits as octal text, e.g. "0644". */
  mode: string;
  modifiedAt: string;
  uid: number;
  gid: number;
}

const SCRIPT_RUN = { timeoutMs: 60_000, maxOutputBytes: 16 * 1024 * 1024 };

/** Largest file handed back inline (base64 in a JSON result); larger ones go to a host file. */
export const INLINE_MAX_BYTES = 8 * 1024 * 1024;

export interface UploadOptions { mode?: string; overwrite: boolean }

/** A guest path given by a caller: absolute, no NUL; passed to the agent as data, never as shell text. */
export function guestPath(path: string, field = 'path'): string {
  if (!path.startsWith('/')) throw invalid(`${field} must be an absolute guest path (got '${path}')`, { field });
  if (path.includes('\0')) throw invalid(`${field} contains a NUL byte`, { field });
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path;
}

/**
 * Files in the guest through its agent: streamed transfers in chunks of any size, and listing, delete and
 * mkdir (which the agent lacks) as POSIX sh programs run by guest-exec, their arguments passed as argv.
 */
export class GuestFileService {
  constructor(private readonly agents: AgentService, private readonly host: HostFiles, private readonly transferDir: string) {}

  /** Uploads a host file; `localPath` must lie inside `<data>/transfer` (relative paths are taken from there). */
  async uploadFromHost(ref: string, remotePath: string, localPath: string, opts: UploadOptions): Promise<{ path: string; bytes: number; localPath: string }> {
    const file = await resolveAllowedPath(localPath, [this.transferDir], 'localPath');
    return { ...(await this.upload(ref, remotePath, this.host.read(file), opts)), localPath: file };
  }

  /** Uploads bytes given inline, as base64. */
  async uploadInline(ref: string, remotePath: string, base64: string, opts: UploadOptions): Promise<{ path: string; bytes: number }> {
    const data = decodeInput(base64, 'base64', 'content');
    return this.upload(ref, remotePath, [data], opts);
  }

  /** Downloads into a new host file inside `<data>/transfer` (an existing one is never replaced). */
  async downloadToHost(ref: string, remotePath: string, localPath: string): Promise<{ path: string; bytes: number; localPath: string }> {
    const target = await resolveNewFileIn(localPath, this.transferDir, 'localPath');
    const stream = await this.download(ref, remotePath);
    return { path: guestPath(remotePath), bytes: await this.host.create(target, stream), localPath: target };
  }

  /** Downloads a small file into memory (for results that carry it inline), refusing more than `max` bytes. */
  async downloadInline(ref: string, remotePath: string, max = INLINE_MAX_BYTES): Promise<{ path: string; bytes: number; content: Buffer }> {
    const stream = await this.download(ref, remotePath);
    const parts: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > max) {
        stream.destroy();
        throw new DomainError('PAYLOAD_TOO_LARGE', `'${remotePath}' is larger than ${max} bytes: download it to a host file (localPath) instead`, { field: 'remotePath' });
      }
      parts.push(chunk);
    }
    return { path: guestPath(remotePath), bytes, content: Buffer.concat(parts, bytes) };
  }

  async list(ref: string, rawPath: string): Promise<{ path: string; entries: GuestEntry[] }> {
    const path = guestPath(rawPath);
    return this.agents.use(ref, `listing '${path}'`, async (agent) => {
      // A file that appears or goes between the two halves of the listing shifts the lines: ask again.
      for (let attempt = 1; ; attempt++) {
        const r = await script(agent, LIST_DIR, [path]);
        failOn(r, path, { [EXIT.ENOENT]: notFound(path), [EXIT.ENOTDIR]: invalid(`'${path}' is not a directory`, { field: 'path' }), [EXIT.EACCES]: forbidden(path) });
        if (r.truncated) throw new DomainError('GUEST_COMMAND_FAILED', `the listing of '${path}' is larger than ${SCRIPT_RUN.maxOutputBytes} bytes`);
        const entries = parseListing(r.stdout);
        if (entries) return { path, entries: entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
        if (attempt === 3) throw new DomainError('GUEST_COMMAND_FAILED', `'${path}' kept changing while it was listed`);
      }
    });
  }

  async remove(ref: string, rawPath: string, recursive: boolean): Promise<void> {
    const path = guestPath(rawPath);
    if (path === '/') throw invalid('refusing to delete the guest\'s root directory', { field: 'path' });
    await this.agents.use(ref, `deleting '${path}'`, async (agent) => {
      const r = await script(agent, REMOVE, [path, recursive ? '1' : '0']);
      failOn(r, path, {
        [EXIT.ENOENT]: notFound(path),
        [EXIT.ENOTEMPTY]: new DomainError('CONFLICT', `directory '${path}' is not empty (delete it with recursive=true)`, { field: 'path' }),
      });
    });
  }

  async mkdir(ref: string, rawPath: string, opts: { parents: boolean; mode?: string }): Promise<{ path: string; created: boolean }> {
    const path = guestPath(rawPath);
    return this.agents.use(ref, `making directory '${path}'`, async (agent) => {
      const r = await script(agent, MKDIR, [path, opts.parents ? '1' : '0', opts.mode ?? '']);
      failOn(r, path, {
        [EXIT.EEXIST]: new DomainError('CONFLICT', `'${path}' already exists`, { field: 'path' }),
        [EXIT.ENOENT]: new DomainError('NOT_FOUND', `the parent directory of '${path}' does not exist (give parents=true to make it)`, { field: 'path' }),
        [EXIT.ENOTDIR]: invalid(`the parent of '${path}' is not a directory`, { field: 'path' }),
      });
      return { path, created: r.stdout.toString('utf8').trim() !== 'exists' };
    });
  }

  /**
   * A guest file as a byte stream, read chunk by chunk while it is sent (one chunk ahead). Opening it
   * and the first read happen before this resolves, so a missing file or a directory is an error the
   * caller can still answer with.
   */
  async download(ref: string, rawPath: string): Promise<Readable> {
    const path = guestPath(rawPath);
    const what = `reading '${path}'`;
    return this.agents.use(ref, what, async (agent, vm) => {
      const handle = await agent.fileOpen(path, 'r');
      let first: { data: Buffer; eof: boolean };
      try {
        first = await agent.fileRead(handle, FILE_CHUNK_BYTES);
      } catch (e) {
        await agent.fileClose(handle).catch(() => undefined);
        throw e;
      }
      const agents = this.agents;
      async function* chunks(): AsyncGenerator<Buffer> {
        try {
          let cur = first;
          for (;;) {
            if (cur.data.length > 0) yield cur.data;
            if (cur.eof) return;
            cur = await agents.use(vm.id, what, (a) => a.fileRead(handle, FILE_CHUNK_BYTES));
          }
        } finally {
          await agent.fileClose(handle).catch(() => undefined);
        }
      }
      return Readable.from(chunks(), { objectMode: false, highWaterMark: FILE_CHUNK_BYTES });
    });
  }

  /**
   * Writes a byte stream to a guest file: into a temporary file beside it, which then replaces the
   * destination atomically (or, without overwrite, is linked into place only if nothing is there). A
   * failed or aborted upload leaves the destination as it was. `mode` (octal text) applies to the file;
   * without it an existing file keeps its mode.
   */
  async upload(ref: string, rawPath: string, body: AsyncIterable<Buffer> | Iterable<Buffer>, opts: UploadOptions): Promise<{ path: string; bytes: number }> {
    const path = guestPath(rawPath);
    if (path === '/' || rawPath.endsWith('/')) throw invalid('path must name a file', { field: 'path' });
    const dir = posix.dirname(path);
    const tmp = posix.join(dir, `.${posix.basename(path).slice(0, 180)}.grove-${randomBytes(4).toString('hex')}.part`);
    return this.agents.use(ref, `writing '${path}'`, async (agent) => {
      if (!opts.overwrite) {
        // Saves sending the bytes for nothing; the final step decides atomically all the same.
        const exists = await script(agent, '[ -e "$1" ] || [ -L "$1" ]', [path]);
        if (exists.exitCode === 0) throw new DomainError('CONFLICT', `'${path}' already exists (give overwrite=true to replace it)`, { field: 'path' });
      }
      const handle = await agent.fileOpen(tmp, 'w').catch((e: unknown) => { throw parentProblem(e, path); });
      let open = true;
      let placed = false;
      try {
        let bytes = 0;
        for await (const chunk of rechunk(body, FILE_CHUNK_BYTES)) {
          for (let off = 0; off < chunk.length;) off += await agent.fileWrite(handle, chunk.subarray(off));
          bytes += chunk.length;
        }
        open = false;
        await agent.fileClose(handle);
        const r = await script(agent, FINISH_UPLOAD, [tmp, path, opts.mode ?? '', opts.overwrite ? '1' : '0']);
        placed = true;
        failOn(r, path, {
          [EXIT.EISDIR]: invalid(`'${path}' is a directory`, { field: 'path' }),
          [EXIT.EEXIST]: new DomainError('CONFLICT', `'${path}' already exists (give overwrite=true to replace it)`, { field: 'path' }),
        });
        return { path, bytes };
      } finally {
        if (open) await agent.fileClose(handle).catch(() => undefined);
        if (!placed) await script(agent, 'rm -f -- "$1"', [tmp]).catch(() => undefined);
      }
    });
  }
}

function script(agent: GuestAgent, program: string, args: string[]): Promise<RunResult> {
  return runInGuest(agent, ['/bin/sh', '-c', program, SCRIPT_NAME, ...args], SCRIPT_RUN);
}

/** Throws the problem a script's exit code stands for; any other failure carries what it printed. */
function failOn(r: RunResult, path: string, byCode: Record<number, DomainError>): void {
  if (r.exitCode === 0) return;
  const known = r.exitCode !== null ? byCode[r.exitCode] : undefined;
  if (known) throw known;
  const said = r.stderr.toString('utf8').trim() || r.stdout.toString('utf8').trim();
  throw new DomainError('GUEST_COMMAND_FAILED', `'${path}': ${r.timedOut ? 'timed out in the guest' : `failed in the guest (exit ${r.exitCode ?? `signal ${r.signal}`})`}${said ? `: ${said}` : ''}`);
}

const notFound = (path: string): DomainError => new DomainError('NOT_FOUND', `no '${path}' in the guest`, { field: 'path' });
const forbidden = (path: string): DomainError => new DomainError('FORBIDDEN', `permission denied for '${path}' in the guest`, { field: 'path' });

function parentProblem(e: unknown, path: string): unknown {
  const errno = (e as { errno?: unknown }).errno;
  if (errno === 'ENOENT') return new DomainError('NOT_FOUND', `the directory of '${path}' does not exist in the guest`, { field: 'path' });
  if (errno === 'ENOTDIR') return invalid(`the parent of '${path}' is not a directory`, { field: 'path' });
  return e;
}

/** Feeds a stream's arbitrary chunks out as pieces of exactly `size` bytes (the last one shorter). */
export async function* rechunk(body: AsyncIterable<Buffer> | Iterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of body) {
    let chunk = c;
    while (have + chunk.length >= size) {
      const take = size - have;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts, size);
      chunk = chunk.subarray(take);
      parts = [];
      have = 0;
    }
    if (chunk.length > 0) { parts.push(chunk); have += chunk.length; }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}

const TYPES: Record<number, EntryType> = {
  0o100000: 'file', 0o040000: 'directory', 0o120000: 'symlink', 0o010000: 'fifo', 0o140000: 'socket', 0o060000: 'block-device', 0o020000: 'char-device',
};

/**
 * The listing program's output: NUL-terminated names, an empty name, then one stat line per name. Null
 * when the two halves do not match up (the directory changed in between).
 */
export function parseListing(out: Buffer): GuestEntry[] | null {
  if (out.length === 0) return [];
  const end = out.indexOf(Buffer.from([0, 0]));
  if (end === -1) return null;
  const names = out.subarray(0, end).toString('utf8').split('\0');
  const lines = out.subarray(end + 2).toString('utf8').split('\n').filter((l) => l !== '');
  if (lines.length !== names.length) return null;
  const entries: GuestEntry[] = [];
  for (let i = 0; i < names.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length !== 6) return null;
    const rawMode = Number.parseInt(f[0]!, 16);
    const [size, mtime, uid, gid] = [f[1], f[2], f[3], f[4]].map((x) => Number(x));
    if (!Number.isFinite(rawMode) || [size, mtime, uid, gid].some((n) => !Number.isFinite(n))) return null;
    entries.push({
      name: names[i]!, type: TYPES[rawMode & 0o170000] ?? 'unknown', size: size!, mode: `0${(rawMode & 0o7777).toString(8).padStart(3, '0')}`,
      modifiedAt: new Date(mtime! * 1000).toISOString(), uid: uid!, gid: gid!,
    });
  }
  return entries;
}
