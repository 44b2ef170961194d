#!/usr/bin/env node
import { createRequire } from 'node:module';
import { ApiError, GroveClient, UnreachableError } from '../client/index.js';
import { ConfigFileError, configDir, configPath, loadConfigFile, type ConfigFile } from '../config/file.js';
import { EXIT, UsageError, flag, parseCommandArgs, str, vmArgIndex, type Command, type Context, type Values } from './command.js';
import { LOCAL_REMOTE, plainHttpRefusal, remoteConnection, resolveConnection, splitRemote, type Connection } from './connection.js';
import { lookup } from './dispatch.js';
import { parseFormat, render } from './format.js';
import { setCommandTable } from './table.js';
import { bundleExport, bundleImport } from './commands/bundle.js';
import { consoleClear, errors, metrics, reorder, stopAll, update } from './commands/manage.js';
import { webhookDeliveries, webhookTest } from './commands/webhook.js';
import { remoteAdd, remoteDefault, remoteLs, remoteRm } from './commands/remote.js';
import { completion, completeWords } from './commands/completion.js';
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
import { serviceInstall, serviceStatus, serviceUninstall } from './commands/service.js';
import { logs } from './commands/logs.js';
import { top } from './commands/top.js';
import { execDetached, job, jobs } from './commands/jobs.js';
import { fork, wait } from './commands/wait-fork.js';

const require = createRequire(import.meta.url);
const VERSION: string = (require('../../../package.json') as { version: string }).version;

const COMMANDS: Command[] = [ls, show, create, clone, start, stop, kill, restart, pause, resume, suspend, rm, resize, snapshotLs, snapshotCreate,
  snapshotRestore, snapshotRm, screenshot, consoleAttach, consoleRead, send, exec, cp, events, host, webhookLs, webhookAdd, webhookRm, mcp, ssh,
  images, imagesRm, pull, launch, serviceInstall, serviceStatus, serviceUninstall, logs, top,
  bundleExport, bundleImport, update, stopAll, metrics, errors, consoleClear, webhookTest, webhookDeliveries, reorder,
  remoteAdd, remoteLs, remoteRm, remoteDefault, completion, completeWords, execDetached, jobs, job, wait, fork];
setCommandTable(COMMANDS);

const CONNECTION_HELP = `Connection (every command except serve):
  --remote NAME    a remote of 'grove remote ls' (or REMOTE:VM wherever a VM is named);
                   else --url, GROVE_URL, NEMETON_PORT, GROVE_PORT; else the config file's
                   default remote; else the local daemon at http://127.0.0.1:22100
  --url URL        daemon URL; else GROVE_URL, else http://127.0.0.1:$NEMETON_PORT,
                   else http://127.0.0.1:$GROVE_PORT, else http://127.0.0.1:22100
  --token TOKEN    API token; else GROVE_TOKEN, else NEMETON_TOKEN, else <data-dir>/token
                   (a remote's token: its token file, <config dir>/tokens/NAME)
  --data-dir DIR   the local daemon's data dir (for its token); else GROVE_DATA_DIR,
                   else $XDG_DATA_HOME/grove or ~/.local/share/grove
  --insecure       allow plain http:// to a non-loopback address (the token goes in the clear)
  --config FILE    the config file; else GROVE_CONFIG, else $XDG_CONFIG_HOME/grove/config.toml
  --json           machine-readable output (JSON; events: one envelope per line)
  -o, --format F   listings: table (default; fits the terminal), json, yaml or csv
  --columns A,B    listings: the columns to show, in this order (also picks json/yaml fields)
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
  const shown = COMMANDS.filter((c) => !c.hidden);
  const w = Math.max(...shown.map((c) => brief(c).length), 13);
  const lines = shown.map((c) => `  ${brief(c).padEnd(w)}  ${c.summary}${c.aliases?.length ? ` (also: ${c.aliases.join(', ')})` : ''}`);
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

/** Synopsis lines; a line that continues the one before (it starts with spaces) gets no `grove`. */
function synopsisLines(c: Command): string {
  return c.synopsis.map((s) => (/^\s/.test(s) ? `        ${s.trimStart()}` : `  grove ${s}`)).join('\n');
}

function commandHelp(c: Command): string {
  return `grove ${c.name} — ${c.summary}

Usage:
${synopsisLines(c)}
${c.aliases?.length ? `\nAlso: ${c.aliases.map((a) => (c.name.includes(' ') ? `grove ${c.name.split(' ')[0]} ${a}` : `grove ${a}`)).join(', ')}\n` : ''}${c.help ? `\n${c.help}\n` : ''}
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
    process.stderr.write(`usage:\n${synopsisLines(cmd)}\n(grove ${cmd.name} --help for more)\n`);
    return EXIT.USAGE;
  }
  const { values, positionals, tail } = parsed;
  if (flag(values, 'help')) { process.stdout.write(commandHelp(cmd)); return EXIT.OK; }
  let ctx: Context;
  try {
    ctx = makeContext(cmd, values, positionals);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigFileError) {
      fail(`${cmd.name}: ${e.message}`, 'USAGE');
      return EXIT.USAGE;
    }
    throw e;
  }
  const conn = ctx.conn;
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
      if (rest[0] === undefined) { process.stdout.write(usage()); return EXIT.OK; }
      if (rest[0] === 'serve') { const { SERVE_USAGE } = await import('./serve.js'); process.stdout.write(SERVE_USAGE); return EXIT.OK; }
      const members = COMMANDS.filter((x) => x.name.startsWith(`${rest[0]} `) && !x.hidden);
      const found = lookup(COMMANDS, rest.slice(0, 2));
      if ('error' in found) {
        if (members.length > 0) { process.stdout.write(members.map(commandHelp).join('\n')); return EXIT.OK; }
        fail(found.error, 'USAGE');
        return EXIT.USAGE;
      }
      process.stdout.write(commandHelp(found.cmd));
      return EXIT.OK;
    }
    default: {
      const found = lookup(COMMANDS, argv);
      if ('error' in found) {
        fail(found.error, 'USAGE');
        return EXIT.USAGE;
      }
      return runCommand(found.cmd, found.rest);
    }
  }
}

/**
 * The connection a command uses: `REMOTE:VM` or `--remote` names a remote; else --url and the variables
 * (as before remotes existed); else the config file's default remote; else the local daemon.
 */
function makeContext(cmd: Command, values: Values, positionals: string[]): Context {
  const env = process.env;
  const config = loadConfigFile(str(values, 'config'), env);
  const cfgDir = configDir(env);
  const flags = { url: str(values, 'url'), token: str(values, 'token'), dataDir: str(values, 'data-dir') };
  let remote = str(values, 'remote') ?? null;
  if (remote !== null && remote !== LOCAL_REMOTE && !config.remotes.has(remote)) throw new UsageError(`unknown remote '${remote}'; see grove remote ls`);
  for (const i of remoteArgs(cmd, positionals)) {
    const split = cmd.name === 'cp' ? splitCpRemote(positionals[i]!, config) : splitRemote(positionals[i]!, config.remotes);
    if (split.remote === null) continue;
    if (remote !== null && remote !== split.remote) throw new UsageError(`'${positionals[i]}' names remote '${split.remote}' but --remote says '${remote}'`);
    remote = split.remote;
    positionals[i] = split.ref;
  }
  // `events --vm REMOTE:VM` too.
  const vmFlag = str(values, 'vm');
  if (vmFlag !== undefined) {
    const split = splitRemote(vmFlag, config.remotes);
    if (split.remote !== null) {
      if (remote !== null && remote !== split.remote) throw new UsageError(`--vm '${vmFlag}' names remote '${split.remote}' but the command speaks to '${remote}'`);
      remote = split.remote;
      values['vm'] = split.ref;
    }
  }
  const explicitLocal = flags.url !== undefined || ['GROVE_URL', 'NEMETON_PORT', 'GROVE_PORT'].some((k) => env[k]);
  if (remote === null && !explicitLocal && config.defaultRemote !== null) remote = config.defaultRemote;
  const connect = (name: string | null): { conn: Connection; insecure: boolean } => {
    // `local`: this host's daemon, found by the usual rules (--url, the variables, the defaults).
    if (name === null || name === LOCAL_REMOTE) return { conn: resolveConnection(flags, env), insecure: flag(values, 'insecure') };
    const entry = config.remotes.get(name);
    if (!entry) throw new UsageError(`unknown remote '${name}' (the config file's default-remote?); see grove remote ls`);
    return { conn: remoteConnection(name, entry, name === remote ? flags : {}, cfgDir), insecure: flag(values, 'insecure') || entry.insecure };
  };
  const clientOf = (name: string | null): { conn: Connection; client: GroveClient } => {
    const { conn, insecure } = connect(name);
    if (!/^https?:$/.test(URL.canParse(conn.url) ? new URL(conn.url).protocol : '')) {
      throw new UsageError(`invalid daemon URL '${conn.url}' (from ${conn.urlSource}); expected http(s)://HOST:PORT`);
    }
    const refusal = plainHttpRefusal(conn.url, insecure);
    if (refusal) throw new UsageError(refusal);
    return { conn, client: new GroveClient({ url: conn.url, token: conn.token }) };
  };
  // A local command (completion, remote) talks to no daemon: its client is the local one, never called.
  const localConn = cmd.local ? resolveConnection(flags, env) : null;
  const main = localConn ? { conn: localConn, client: new GroveClient({ url: localConn.url, token: localConn.token }) } : clientOf(remote);
  const json = flag(values, 'json');
  const format = cmd.listing ? parseFormat(str(values, 'format'), json) : json ? 'json' : 'table';
  const columnsText = str(values, 'columns');
  const columns = columnsText !== undefined ? columnsText.split(',').map((c) => c.trim()).filter(Boolean) : null;
  const width = process.stdout.isTTY ? process.stdout.columns : null;
  return {
    client: main.client,
    conn: main.conn,
    json: format === 'json',
    format,
    out: (t) => { if (t) process.stdout.write(t); },
    err: (t) => { process.stderr.write(t); },
    outBytes: (b) => new Promise((resolve) => { process.stdout.write(b, () => resolve()); }),
    listing: (rows, cols, raw) => { const t = render(rows, cols, { format, columns, width }, raw); if (t) process.stdout.write(t); },
    config: config satisfies ConfigFile,
    configPath: configPath(str(values, 'config'), env).path,
    configDir: cfgDir,
    remote: remote === LOCAL_REMOTE ? null : remote,
    clientFor: (name) => clientOf(name).client,
  };
}

/** The positionals that may carry a `REMOTE:` prefix. */
function remoteArgs(cmd: Command, positionals: string[]): number[] {
  if (cmd.name === 'cp') return positionals.map((_, i) => i);
  const i = vmArgIndex(cmd);
  return i !== null && i < positionals.length ? [i] : [];
}

/** cp's `REMOTE:VM:/path` (one colon is `VM:/path`, which stays as it is). */
function splitCpRemote(arg: string, config: ConfigFile): { remote: string | null; ref: string } {
  return /^[^:/]+:[^:/]+:/.test(arg) ? splitRemote(arg, config.remotes) : { remote: null, ref: arg };
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
