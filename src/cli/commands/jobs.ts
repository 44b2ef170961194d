import type { Job } from '../../client/index.js';
import { EXIT, UsageError, flag, list, seconds, str, type Command, type Context } from '../command.js';
import { json, table } from '../output.js';

function outcome(j: Job): string {
  if (j.state === 'running') return 'running';
  if (j.state === 'lost') return `lost (${j.reason ?? 'unknown'})`;
  return j.exitCode !== null ? `exit ${j.exitCode}` : `signal ${j.signal ?? '?'}${j.timedOut ? ' (timed out)' : ''}`;
}

/** The exit status grove passes on for a job: its own, 128+N for a signal, 1 when lost. */
function exitOf(j: Job): number {
  if (j.exitCode !== null) return j.exitCode;
  if (j.signal !== null) return 128 + j.signal;
  return EXIT.ERROR;
}

export const execDetached: Command = {
  name: 'run', brief: 'run VM -- CMD...',
  synopsis: ['run VM [--timeout S] [--env NAME=VALUE]... [--cwd DIR] [--stdin] -- CMD [ARG...]'],
  summary: 'Start a command in the guest as a durable job and print its id (exec --detach)',
  help: `Starts the command through the guest agent as a job and prints its id at once; the command goes on
in the guest, its output is kept by the daemon (see 'grove job VM JOB --follow'). --timeout kills it
after S seconds (default: no limit); --stdin sends grove's standard input as the command's input.
'grove exec --detach' does the same.`,
  options: { timeout: { type: 'string' }, env: { type: 'string', multiple: true }, cwd: { type: 'string' }, stdin: { type: 'boolean' }, detach: { type: 'boolean' } },
  args: [1, 1],
  tail: true,
  async run(ctx, v, [ref], tail) {
    if (tail.length === 0) throw new UsageError('missing the command to run (run VM -- CMD...)');
    const timeoutSeconds = seconds(v, 'timeout');
    const cwd = str(v, 'cwd');
    const env: Record<string, string> = {};
    for (const e of list(v, 'env')) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(e);
      if (!m) throw new UsageError(`--env must look like NAME=VALUE (got '${e}')`);
      env[m[1]!] = m[2]!;
    }
    let stdin: string | undefined;
    if (flag(v, 'stdin')) {
      const parts: Buffer[] = [];
      for await (const c of process.stdin) parts.push(c as Buffer);
      stdin = Buffer.concat(parts).toString('base64');
    }
    const r = await ctx.client.createJob(ref!, {
      ...(tail.length === 1 ? { command: tail[0]! } : { argv: tail }),
      ...(timeoutSeconds ? { timeoutSeconds } : {}), ...(cwd !== undefined ? { cwd } : {}), ...(Object.keys(env).length > 0 ? { env } : {}),
      ...(stdin !== undefined ? { stdin, stdinEncoding: 'base64' as const } : {}),
    });
    ctx.out(ctx.json ? json(r.job) : `${r.id}\n`);
    return EXIT.OK;
  },
};

export const jobs: Command = {
  name: 'jobs',
  synopsis: ['jobs VM'],
  summary: 'List a VM\'s jobs, newest first',
  args: [1, 1],
  async run(ctx, _v, [ref]) {
    const list = await ctx.client.listJobs(ref!);
    if (ctx.json) { ctx.out(json(list)); return EXIT.OK; }
    ctx.out(table(['ID', 'STATE', 'STARTED', 'OUTPUT', 'COMMAND'], list.map((j) => [
      j.id, outcome(j), j.createdAt.replace(/\.\d+Z$/, 'Z'), `${j.stdout.bytes}/${j.stderr.bytes}`, j.argv.join(' ').slice(0, 60),
    ])));
    return EXIT.OK;
  },
};

export const job: Command = {
  name: 'job',
  synopsis: ['job VM JOB [--follow] [--stderr] [--since N] [--kill SIGNAL]'],
  summary: 'A job\'s state, its output (--follow: live, until it ends), or --kill',
  help: `Without flags: the job's record. --follow prints its stdout (--stderr: stderr) from byte --since
(default 0) as it arrives and exits with the job's exit code (128+N for a signal) once it has ended; a
follow interrupted (ctrl-c) loses nothing: the output stays in the daemon. --kill sends the signal (TERM,
KILL, HUP, INT, QUIT, USR1, USR2) to the command and everything it started.`,
  options: { follow: { type: 'boolean', short: 'f' }, stderr: { type: 'boolean' }, since: { type: 'string' }, kill: { type: 'string' } },
  args: [2, 2],
  async run(ctx, v, [ref, id]) {
    const signal = str(v, 'kill');
    if (signal !== undefined) {
      const name = signal.toUpperCase().replace(/^SIG/, '') as Parameters<Context['client']['killJob']>[2];
      const j = await ctx.client.killJob(ref!, id!, name);
      ctx.out(ctx.json ? json(j) : `${j.id}: sent ${name ?? 'TERM'}\n`);
      return EXIT.OK;
    }
    if (!flag(v, 'follow')) {
      const j = await ctx.client.getJob(ref!, id!);
      if (ctx.json) ctx.out(json(j));
      else {
        ctx.out(table(['FIELD', 'VALUE'], [
          ['id', j.id], ['command', j.argv.join(' ')], ['state', outcome(j)], ['started', j.createdAt], ['ended', j.endedAt ?? '-'],
          ['stdout', `${j.stdout.bytes} bytes${j.stdout.capped ? ` (capped, ${j.stdout.dropped} dropped)` : ''}`],
          ['stderr', `${j.stderr.bytes} bytes${j.stderr.capped ? ` (capped, ${j.stderr.dropped} dropped)` : ''}`],
        ]));
      }
      return EXIT.OK;
    }
    const since = str(v, 'since');
    if (since !== undefined && !/^\d+$/.test(since)) throw new UsageError('--since must be a byte offset');
    const body = await ctx.client.jobOutput(ref!, id!, { stream: flag(v, 'stderr') ? 'stderr' : 'stdout', follow: true, ...(since !== undefined ? { since: Number(since) } : {}) });
    for await (const chunk of body) await ctx.outBytes(chunk);
    return exitOf(await ctx.client.getJob(ref!, id!));
  },
};
