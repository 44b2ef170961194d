import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { EXIT, UsageError, flag, int, type Command, type Context } from '../command.js';
import { UNIT_NAME, unitDir } from '../service-unit.js';

const FOLLOW_POLL_MS = 1000;

export const logs: Command = {
  name: 'logs',
  synopsis: ['logs VM [--bytes N] [--follow]', 'logs --daemon [--lines N] [--follow]'],
  brief: 'logs VM | --daemon',
  summary: 'QEMU\'s log of a VM and Grove\'s records of its errors; or the daemon\'s log',
  help: `For a VM: the end of what QEMU wrote (its warnings and errors; --bytes, default 65536), then Grove's
records of the VM's errors (QEMU failures, failed operations, guest panics), oldest first. --follow keeps
printing what is added to both.
--daemon: the daemon's log from the systemd journal, when it runs as a service ('grove service install';
a system unit, else a user unit); --lines N (default 100). A daemon started by hand logs to its standard
output instead.`,
  options: { bytes: { type: 'string' }, follow: { type: 'boolean', short: 'f' }, daemon: { type: 'boolean' }, lines: { type: 'string' } },
  args: [0, 1],
  async run(ctx, v, [vm]) {
    if (flag(v, 'daemon')) {
      if (vm !== undefined) throw new UsageError('give a VM or --daemon, not both');
      return daemonLog(ctx, int(v, 'lines', { min: 1 }) ?? 100, flag(v, 'follow'));
    }
    if (vm === undefined) throw new UsageError('which VM? (or --daemon for the daemon\'s log)');
    const bytes = int(v, 'bytes', { min: 1 }) ?? 65536;
    if (bytes > 1048576) throw new UsageError('--bytes is at most 1048576');
    const log = await ctx.client.qemuLog(vm, { maxBytes: bytes });
    const errors = (await ctx.client.errors(vm, 200)).errors.reverse();
    if (ctx.json) {
      ctx.out(`${JSON.stringify({ qemuLog: log, errors })}\n`);
      if (!flag(v, 'follow')) return EXIT.OK;
    } else {
      ctx.out(`== QEMU log (bytes ${log.from}–${log.to} of ${log.size}) ==\n${log.text}${log.text && !log.text.endsWith('\n') ? '\n' : ''}`);
      ctx.out(`== Grove's records of errors (${errors.length}) ==\n`);
      for (const e of errors) ctx.out(formatError(e));
      if (!flag(v, 'follow')) return EXIT.OK;
    }
    let since = log.size;
    let lastError = errors.at(-1)?.id ?? 0;
    for (;;) {
      await delay(FOLLOW_POLL_MS);
      const more = await ctx.client.qemuLog(vm, { since, maxBytes: 1048576 });
      if (more.text) ctx.out(ctx.json ? `${JSON.stringify({ qemuLog: more })}\n` : more.text);
      since = more.to;
      const fresh = (await ctx.client.errors(vm, 200)).errors.filter((e) => e.id > lastError).reverse();
      for (const e of fresh) ctx.out(ctx.json ? `${JSON.stringify({ error: e })}\n` : formatError(e));
      lastError = fresh.at(-1)?.id ?? lastError;
    }
  },
};

function formatError(e: { at: string; source: string; message: string }): string {
  return `${e.at}  ${e.source.padEnd(9)}  ${e.message}\n`;
}

/** journalctl for the unit `grove service install` wrote: the system one if present, else the user's. */
async function daemonLog(ctx: Context, lines: number, follow: boolean): Promise<number> {
  const system = existsSync(join(unitDir('system'), UNIT_NAME));
  const user = existsSync(join(unitDir('user'), UNIT_NAME));
  if (!system && !user) {
    ctx.err(`grove: the daemon is not installed as a systemd service here (no ${UNIT_NAME} in ${unitDir('system')} or ${unitDir('user')}); a daemon started by hand ('grove serve', 'make run') logs to its standard output (NOT_A_SERVICE)\n`);
    return EXIT.ERROR;
  }
  const args = [system ? '--unit' : '--user-unit', UNIT_NAME, '--lines', String(lines), '--no-pager', ...(follow ? ['--follow'] : []), ...(ctx.json ? ['--output', 'json'] : [])];
  return new Promise((resolve) => {
    const p = spawn('journalctl', args, { stdio: 'inherit' });
    p.on('error', (e) => { ctx.err(`grove: journalctl could not run: ${e.message}\n`); resolve(EXIT.ERROR); });
    p.on('exit', (code) => resolve(code === 0 ? EXIT.OK : EXIT.ERROR));
  });
}
