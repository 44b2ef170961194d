#!/usr/bin/env node
import { createRequire } from 'node:module';
import { ApiError, GroveClient, UnreachableError } from '../client/index.js';
import { EXIT, UsageError, flag, parseCommandArgs, str, type Command, type Context } from './command.js';
import { resolveConnection } from './connection.js';
import { consoleAttach, consoleRead, send } from './commands/console.js';
import { cp, exec } from './commands/agent.js';
import { events } from './commands/events.js';
import { host } from './commands/host.js';
import { resize, screenshot, snapshotCreate, snapshotLs, snapshotRestore, snapshotRm, suspend } from './commands/state.js';
import { mcp } from './commands/mcp.js';
import { webhookAdd, webhookLs, webhookRm } from './commands/webhook.js';
import { clone, create, kill, ls, pause, restart, resume, rm, show, start, stop } from './commands/vm.js';
import { ssh } from './commands/ssh.js';
import { images, imagesRm, pull } from './commands/images.js';
import { launch } from './commands/launch.js';
import { fork, wait } from './commands/wait-fork.js';

const require = createRequire(import.meta.url);
const VERSION: string = (require('../../../package.json') as { version: string }).version;

const COMMANDS: Command[] = [ls, show, create, clone, start, stop, kill, restart, pause, resume, suspend, rm, resize, snapshotLs, snapshotCreate,
  snapshotRestore, snapshotRm, screenshot, consoleAttach, consoleRead, send, exec, cp, events, host, webhookLs, webhookAdd, webhookRm, mcp, ssh,
  images, imagesRm, pull, launch, wait, fork];
const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

const CONNECTION_HELP = `Connection (every command except serve):
  --url URL        daemon URL; else GROVE_URL, else http://127.0.0.1:$NEMETON_PORT,
                   else http://127.0.0.1:$GROVE_PORT, else http://127.0.0.1:22100
  --token TOKEN    API token; else GROVE_TOKEN, else NEMETON_TOKEN, else <data-dir>/token
  --data-dir DIR   the local daemon's data dir (for its token); else GROVE_DATA_DIR,
                   else $XDG_DATA_HOME/grove or ~/.local/share/grove
  --json           machine-readable output (JSON; events: one envelope per line)
  -h, --help       help for a command (also: grove help COMMAND)`;

const EXIT_HELP = `Exit codes:
  0    ok
  1    the daemon refused or the operation failed (message on stderr: grove: <detail> (<CODE>));
       exec: the guest command's own exit code instead
  2    usage error (unknown command or flag, bad value)
  3    daemon unreachable
  124  timed out (start --wait-for, stop, exec --timeout, launch --timeout, wait --timeout)
  128+N  exec: the guest command was ended by signal N`;

function usage(): string {
  const brief = (c: Command) => c.brief ?? c.synopsis[0]!.replace(/ \[.*$/, '');
  const w = Math.max(...COMMANDS.map((c) => brief(c).length), 13);
  const lines = COMMANDS.map((c) => `  ${brief(c).padEnd(w)}  ${c.summary}`);
  return `grove ${VERSION} — headless QEMU VM manager

Usage: grove COMMAND [ARGS] [FLAGS]

Commands:
  ${'serve [FLAGS]'.padEnd(w)}  Run the daemon (grove serve --help)
${lines.join('\n')}
  ${'--version'.padEnd(w)}  Print the version

VM is a VM's name or id. 'grove COMMAND --help' shows a command's flags and details.

${CONNECTION_HELP}

${EXIT_HELP}
`;
}

function commandHelp(c: Command): string {
  return `grove ${c.name} — ${c.summary}

Usage:
${c.synopsis.map((s) => `  grove ${s}`).join('\n')}
${c.help ? `\n${c.help}\n` : ''}
${CONNECTION_HELP}

${EXIT_HELP}
`;
}

function fail(message: string, code: string): void {
  process.stderr.write(`grove: ${message} (${code})\n`);
}

async function runCommand(cmd: Command, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandArgs(cmd, argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    fail(`${cmd.name}: ${e.message}`, 'USAGE');
    process.stderr.write(`usage:\n${cmd.synopsis.map((s) => `  grove ${s}`).join('\n')}\n(grove ${cmd.name} --help for more)\n`);
    return EXIT.USAGE;
  }
  const { values, positionals, tail } = parsed;
  if (flag(values, 'help')) { process.stdout.write(commandHelp(cmd)); return EXIT.OK; }
  const conn = resolveConnection({ url: str(values, 'url'), token: str(values, 'token'), dataDir: str(values, 'data-dir') }, process.env);
  if (!/^https?:$/.test(URL.canParse(conn.url) ? new URL(conn.url).protocol : '')) {
    fail(`invalid daemon URL '${conn.url}' (from ${conn.urlSource}); expected http://HOST:PORT`, 'USAGE');
    return EXIT.USAGE;
  }
  const ctx: Context = {
    client: new GroveClient({ url: conn.url, token: conn.token }),
    conn,
    json: flag(values, 'json'),
    out: (t) => { if (t) process.stdout.write(t); },
    err: (t) => { process.stderr.write(t); },
    outBytes: (b) => new Promise((resolve) => { process.stdout.write(b, () => resolve()); }),
  };
  try {
    return await cmd.run(ctx, values, positionals, tail);
  } catch (e) {
    if (e instanceof UsageError) {
      fail(`${cmd.name}: ${e.message}`, 'USAGE');
      return EXIT.USAGE;
    }
    if (e instanceof UnreachableError) {
      fail(`${e.message}; is 'grove serve' running? (daemon URL from ${conn.urlSource})`, 'UNREACHABLE');
      return EXIT.UNREACHABLE;
    }
    if (e instanceof ApiError) {
      fail(e.detail, e.code);
      if (e.code === 'UNAUTHORIZED') process.stderr.write(`  token from ${conn.tokenSource}; pass --token, set GROVE_TOKEN, or --data-dir of the daemon\n`);
      return e.code === 'TIMEOUT' ? EXIT.TIMEOUT : EXIT.ERROR;
    }
    throw e;
  }
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  switch (name) {
    case 'serve': {
      // Loaded only here: the other commands never pull in the daemon (Fastify, SQLite, QEMU driver).
      const { serve } = await import('./serve.js');
      await serve(rest);
      return -1; // the daemon keeps the process alive
    }
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return EXIT.OK;
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(usage());
      return EXIT.OK;
    case 'help': {
      const target = rest.slice(0, 2).join(' ') && BY_NAME.has(rest.slice(0, 2).join(' ')) ? rest.slice(0, 2).join(' ') : rest[0];
      if (target === 'serve') { const { SERVE_USAGE } = await import('./serve.js'); process.stdout.write(SERVE_USAGE); return EXIT.OK; }
      const c = target !== undefined ? BY_NAME.get(target) : undefined;
      const members = COMMANDS.filter((x) => x.name.startsWith(`${target} `));
      if (!c && members.length > 0) { process.stdout.write(members.map(commandHelp).join('\n')); return EXIT.OK; }
      if (target !== undefined && !c) { fail(`unknown command '${target}'`, 'USAGE'); return EXIT.USAGE; }
      process.stdout.write(c ? commandHelp(c) : usage());
      return EXIT.OK;
    }
    default: {
      // Groups (`webhook ls|add|rm`) are looked up with their sub-command.
      const group = COMMANDS.some((c) => c.name.startsWith(`${name} `));
      if (group) {
        const c = BY_NAME.get(`${name} ${rest[0] ?? ''}`);
        // A group that is also a command of its own (`images` lists, `images rm` removes).
        const own = BY_NAME.get(name);
        if (!c && own && (rest[0] === undefined || rest[0].startsWith('-'))) return runCommand(own, rest);
        if (!c) {
          fail(`${name}: ${rest[0] === undefined ? 'missing sub-command' : `unknown sub-command '${rest[0]}'`}; one of: ${COMMANDS.filter((x) => x.name.startsWith(`${name} `)).map((x) => x.name.split(' ')[1]).join(', ')}`, 'USAGE');
          return EXIT.USAGE;
        }
        return runCommand(c, rest.slice(1));
      }
      const c = BY_NAME.get(name);
      if (!c) {
        fail(`unknown command '${name}'; see grove --help`, 'USAGE');
        return EXIT.USAGE;
      }
      return runCommand(c, rest);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Exit explicitly: an idle keep-alive socket must not hold a finished command open.
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`grove: ${e instanceof Error ? e.stack : String(e)} (INTERNAL)\n`);
    process.exit(EXIT.ERROR);
  },
);
