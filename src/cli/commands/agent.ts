import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ApiError, type GuestExecOutcome, type GuestExecRequest, type Vm } from '../../client/index.js';
import { EXIT, UsageError, flag, list, seconds, str, type Command, type Context } from '../command.js';
import { bytes, json } from '../output.js';
import { commandLine } from './console.js';
import { execDetached } from './jobs.js';

const ENV = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;
const REMOTE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,62}):(\/.*)$/s;

function quote(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

async function readStdin(): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export const exec: Command = {
  name: 'exec', brief: 'exec VM -- CMD...',
  synopsis: ['exec VM [--timeout S] [--env NAME=VALUE]... [--cwd DIR] [--stdin] [--serial] [--detach] -- CMD [ARG...]'],
  summary: 'Run a command in the guest (guest agent, else the serial console); exits with its exit code',
  help: `Runs the command through the VM's QEMU guest agent when it answers: stdout and stderr are kept
apart and passed through byte for byte, and grove exits with the command's exit code (128+N when a
signal N ended it; 124 when --timeout, default 30 s, passed: the command and everything it started are
killed). Several words are an argv, run as given; a single word is a shell command line ('ls | wc -l').
--env adds variables, --cwd runs it in a guest directory, --stdin sends grove's own standard input.

Without an answering agent (none installed, not started yet) grove says so on stderr and types the
command into the shell on the serial console instead (as --serial always does): stdout and stderr come
mixed as the terminal showed them, the guest needs a shell prompt there, and --stdin is not available.
--json prints the result object, with "via": "agent" or "serial".
--detach starts it as a durable job and prints the job id (see 'grove run', 'grove job').`,
  options: { timeout: { type: 'string' }, env: { type: 'string', multiple: true }, cwd: { type: 'string' }, stdin: { type: 'boolean' }, serial: { type: 'boolean' }, detach: { type: 'boolean' } },
  args: [1, 1],
  tail: true,
  async run(ctx, v, [ref], tail) {
    if (tail.length === 0) throw new UsageError('missing the command to run (exec VM -- CMD...)');
    if (flag(v, 'detach')) return execDetached.run(ctx, v, [ref!], tail);
    const timeoutSeconds = seconds(v, 'timeout');
    const env: Record<string, string> = {};
    for (const e of list(v, 'env')) {
      const m = ENV.exec(e);
      if (!m) throw new UsageError(`--env must look like NAME=VALUE (got '${e}')`);
      env[m[1]!] = m[2]!;
    }
    const cwd = str(v, 'cwd');
    const wantStdin = flag(v, 'stdin');
    if (flag(v, 'serial') && wantStdin) throw new UsageError('--stdin needs the guest agent; it cannot be used with --serial');

    const vm = await ctx.client.getVm(ref!);
    let agentSaid = '';
    // Stopped and other states: the agent route names the state (409 INVALID_STATE), as the console would.
    if (!flag(v, 'serial') && (vm.agent?.connected !== false)) {
      const req: GuestExecRequest = {
        ...(tail.length === 1 ? { command: tail[0]! } : { argv: tail }),
        ...(Object.keys(env).length > 0 ? { env } : {}), ...(cwd !== undefined ? { cwd } : {}), ...(timeoutSeconds ? { timeoutSeconds } : {}),
      };
      if (wantStdin) { req.stdin = (await readStdin()).toString('base64'); req.stdinEncoding = 'base64'; }
      try {
        return await agentResult(ctx, await ctx.client.execInGuest(vm.id, req), timeoutSeconds);
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== 'GUEST_AGENT_UNAVAILABLE') throw e;
        agentSaid = `: ${e.detail}`;
      }
    }
    if (wantStdin) throw new ApiError(409, 'GUEST_AGENT_UNAVAILABLE', `the guest agent of '${vm.name}' does not answer${agentSaid}; --stdin needs it`);
    if (!flag(v, 'serial')) ctx.err(`grove: the guest agent of '${vm.name}' does not answer; running the command on the serial console instead\n`);
    return serial(ctx, vm, tail, env, cwd, timeoutSeconds);
  },
};

async function agentResult(ctx: Context, r: GuestExecOutcome, timeoutSeconds: number | undefined): Promise<number> {
  if (ctx.json) ctx.out(json({ via: 'agent', ...r }));
  else {
    await ctx.outBytes(Buffer.from(r.stdout, r.stdoutEncoding === 'base64' ? 'base64' : 'utf8'));
    const err = Buffer.from(r.stderr, r.stderrEncoding === 'base64' ? 'base64' : 'utf8');
    if (err.length > 0) process.stderr.write(err);
    if (r.truncated) ctx.err('grove: the output was cut (it is longer than the 1 MiB kept per stream)\n');
  }
  if (r.timedOut) {
    ctx.err(`grove: command timed out after ${timeoutSeconds ?? 30} s and was killed (TIMEOUT)\n`);
    return EXIT.TIMEOUT;
  }
  if (r.exitCode !== null) return r.exitCode;
  return r.signal !== null ? 128 + r.signal : EXIT.ERROR;
}

async function serial(ctx: Context, vm: Vm, tail: string[], env: Record<string, string>, cwd: string | undefined, timeoutSeconds: number | undefined): Promise<number> {
  let line = commandLine(tail);
  const vars = Object.entries(env).map(([k, val]) => `${k}=${quote(val)}`);
  if (vars.length > 0) line = `env ${vars.join(' ')} ${tail.length === 1 ? `sh -c ${quote(line)}` : line}`;
  if (cwd !== undefined) line = `cd ${quote(cwd)} && ${line}`;
  const r = await ctx.client.consoleExecute(vm.id, { command: line, ...(timeoutSeconds ? { timeoutSeconds } : {}) });
  if (ctx.json) ctx.out(json({ via: 'serial', ...r }));
  else ctx.out(r.output);
  if (r.timedOut) {
    ctx.err(`grove: command timed out after ${timeoutSeconds ?? 30} s and was interrupted (TIMEOUT)\n`);
    return EXIT.TIMEOUT;
  }
  return r.exitCode ?? EXIT.ERROR;
}

export const cp: Command = {
  name: 'cp', brief: 'cp SRC DEST',
  synopsis: ['cp [--mode MODE] [--no-clobber] HOST-FILE VM:/GUEST/PATH', 'cp VM:/GUEST/FILE HOST-PATH|-'],
  summary: 'Copy a file into or out of a running VM (through its guest agent)',
  help: `One side is VM:/absolute/path (VM's name or id), the other a path on this machine. The bytes are
streamed through the daemon in chunks, so files of any size work. A guest path ending in / (or a local
directory) takes the source's file name. Into the guest: the file replaces the destination atomically;
--no-clobber refuses to replace one (exit 1, CONFLICT); --mode sets its permissions (e.g. 0755).
Out of the guest: HOST-PATH '-' writes to stdout; an existing local file is replaced.`,
  options: { mode: { type: 'string' }, 'no-clobber': { type: 'boolean', short: 'n' } },
  args: [2, 2],
  async run(ctx, v, [src, dst]) {
    const from = REMOTE.exec(src!);
    const to = REMOTE.exec(dst!);
    if ((from === null) === (to === null)) throw new UsageError('exactly one side must be VM:/guest/path');
    const mode = str(v, 'mode');
    if (mode !== undefined && !/^[0-7]{3,4}$/.test(mode)) throw new UsageError(`--mode must be octal permission bits like 644 or 0755 (got '${mode}')`);
    if (to) {
      const st = await stat(src!).catch(() => null);
      if (!st?.isFile()) throw new UsageError(`'${src}' is not a file on this machine`);
      const path = to[2]!.endsWith('/') ? `${to[2]}${basename(src!)}` : to[2]!;
      const r = await ctx.client.uploadGuestFile(to[1]!, path, createReadStream(src!), { ...(mode ? { mode } : {}), ...(flag(v, 'no-clobber') ? { overwrite: false } : {}) });
      ctx.out(ctx.json ? json(r) : `Copied ${bytes(r.bytes)} to ${to[1]}:${r.path}.\n`);
      return EXIT.OK;
    }
    if (mode !== undefined || flag(v, 'no-clobber')) throw new UsageError('--mode and --no-clobber apply to copies into the guest');
    const [, vmRef, guestPath] = from!;
    const body = Readable.fromWeb(await ctx.client.downloadGuestFile(vmRef!, guestPath!) as WebReadableStream<Uint8Array>);
    if (dst === '-') {
      await pipeline(body, process.stdout, { end: false });
      return EXIT.OK;
    }
    const isDir = (await stat(dst!).catch(() => null))?.isDirectory() ?? false;
    const target = isDir ? join(dst!, basename(guestPath!)) : dst!;
    const partial = `${target}.grove-part`;
    let n = 0;
    body.on('data', (c: Buffer) => { n += c.length; });
    try {
      await pipeline(body, createWriteStream(partial));
      await rename(partial, target);
    } catch (e) {
      await rm(partial, { force: true });
      throw e;
    }
    ctx.out(ctx.json ? json({ path: guestPath, bytes: n, localPath: target }) : `Copied ${bytes(n)} from ${vmRef}:${guestPath} to ${target}.\n`);
    return EXIT.OK;
  },
};
