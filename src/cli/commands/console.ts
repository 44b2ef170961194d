import { openConsole } from '../../client/index.js';
import { EXIT, UsageError, flag, int, str, type Command } from '../command.js';
import { json } from '../output.js';

const DETACH = 0x1d; // ctrl-]

export const consoleAttach: Command = {
  name: 'console', synopsis: ['console VM'], summary: 'Attach to the serial console interactively (detach with ctrl-])',
  help: `Raw terminal: every key goes to the guest (ctrl-c too); ctrl-] detaches and restores the terminal.
The recent console output is shown first. Ends by itself when the VM stops.`,
  args: [1, 1],
  async run(ctx, _v, [ref]) {
    const vm = await ctx.client.getVm(ref!);
    const stdin = process.stdin;
    const tty = stdin.isTTY === true;
    const sock = await openConsole(ctx.client, vm.id, (chunk) => { process.stdout.write(chunk); });
    let detached = false;
    let raw = false;
    const restore = (): void => {
      if (raw) { try { stdin.setRawMode(false); } catch { /* terminal gone */ } raw = false; }
      stdin.pause();
    };
    process.once('exit', restore);
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(sig, () => { restore(); process.exit(EXIT.ERROR); });
    if (tty) { stdin.setRawMode(true); raw = true; }
    ctx.err(`Connected to the console of '${vm.name}'. Detach with ctrl-].\r\n`);
    stdin.on('data', (buf: Buffer) => {
      if (detached) return;
      const i = buf.indexOf(DETACH);
      if (i === -1) { sock.write(buf); return; }
      if (i > 0) sock.write(buf.subarray(0, i));
      detached = true;
      sock.close();
    });
    stdin.resume();
    const end = await sock.closed;
    restore();
    if (detached) { ctx.err('\r\nDetached.\r\n'); return EXIT.OK; }
    if (end.error) throw end.error;
    if (end.code === 1000 || end.code === 1001) { ctx.err(`\r\nConsole closed: ${end.reason || 'by the daemon'}.\r\n`); return EXIT.OK; }
    ctx.err(`\r\ngrove: console connection lost (${end.code}${end.reason ? ` ${end.reason}` : ''}) (CONSOLE_CLOSED)\r\n`);
    return EXIT.ERROR;
  },
};

export const consoleRead: Command = {
  name: 'console-read', synopsis: ['console-read VM [--since OFFSET] [--limit BYTES] [--strip-ansi]'],
  summary: 'Print console output (the latest, or from an offset)',
  help: `Without --since: the latest --limit bytes (default 65536) since the last clear. With --since: from that
offset on; --json shows nextOffset to continue from.`,
  options: { since: { type: 'string' }, limit: { type: 'string' }, 'strip-ansi': { type: 'boolean' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const sinceOff = int(v, 'since', { min: 0 });
    const limit = int(v, 'limit', { min: 1, max: 1048576 });
    const page = await ctx.client.readConsole(ref!, { ...(sinceOff !== undefined ? { since: sinceOff } : {}), ...(limit ? { limit } : {}), stripAnsi: flag(v, 'strip-ansi') });
    ctx.out(ctx.json ? json(page) : page.data);
    return EXIT.OK;
  },
};

export const send: Command = {
  name: 'send', brief: 'send VM TEXT|--keys K,...', synopsis: ['send VM TEXT [--enter]', 'send VM --keys KEY[,KEY...]'],
  summary: 'Type text or keys into the serial console',
  help: `TEXT is sent as-is; --enter presses enter after it. Key names: enter, tab, backspace, escape, up, down,
left, right, home, end, delete, pageup, pagedown, f1–f12, ctrl-a … ctrl-z.`,
  options: { keys: { type: 'string' }, enter: { type: 'boolean' } },
  args: [1, 2],
  async run(ctx, v, [ref, text]) {
    const keys = str(v, 'keys');
    if ((keys === undefined) === (text === undefined)) throw new UsageError('give either TEXT or --keys');
    const input = keys !== undefined
      ? { keys: keys.split(',').map((k) => k.trim()).filter(Boolean) }
      : { text: text! + (flag(v, 'enter') ? '\r' : '') };
    const r = await ctx.client.sendConsole(ref!, input);
    ctx.out(ctx.json ? json(r) : '');
    return EXIT.OK;
  },
};

/** One argument is a shell command line as typed; several are an argv, each word quoted for the shell. */
export function commandLine(words: string[]): string {
  if (words.length === 1) return words[0]!;
  return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`)).join(' ');
}
