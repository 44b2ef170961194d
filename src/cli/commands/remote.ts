import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { GroveClient } from '../../client/index.js';
import { removeFile, updateConfigFile, writeSecretFile } from '../../config/file.js';
import { EXIT, UsageError, flag, str, type Command, type Context } from '../command.js';
import { LOCAL_REMOTE, defaultTokenFile, plainHttpRefusal, resolveConnection } from '../connection.js';
import type { Column } from '../format.js';
import { json } from '../output.js';
import { suggest } from '../suggest.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

type Doc = Record<string, unknown>;
function remotesOf(doc: Doc): Record<string, unknown> {
  const r = doc['remotes'];
  if (typeof r === 'object' && r !== null && !Array.isArray(r)) return r as Record<string, unknown>;
  return (doc['remotes'] = {}) as Record<string, unknown>;
}

function known(ctx: Context, name: string): void {
  if (!ctx.config.remotes.has(name)) throw new UsageError(`no remote '${name}'${suggest(name, [...ctx.config.remotes.keys()])}; see grove remote ls`);
}

export const remoteAdd: Command = {
  name: 'remote add', synopsis: ['remote add NAME URL [--token TOKEN | --token-file FILE] [--insecure] [--no-check]'],
  summary: 'Add a daemon on another host as a remote (REMOTE:VM, --remote NAME)',
  help: `The URL must be https:// unless the host is a loopback address or --insecure is given (the token would
cross the network in the clear). --token is saved to <config dir>/tokens/NAME (mode 0600); --token-file
refers to a file of your own instead. The remote is asked for its host facts first (--no-check: not).
For a self-signed certificate, give Node its CA: NODE_EXTRA_CA_CERTS=/path/cert.pem.`,
  options: { 'token-file': { type: 'string' }, 'no-check': { type: 'boolean' } },
  args: [2, 2], vmArg: null, local: true,
  async run(ctx, v, [name, url]) {
    if (!NAME.test(name!) || name === LOCAL_REMOTE) throw new UsageError(`a remote's name must match ${NAME.source} and not be '${LOCAL_REMOTE}' (got '${name}')`);
    if (ctx.config.remotes.has(name!)) throw new UsageError(`remote '${name}' exists; grove remote rm ${name} first`);
    if (!URL.canParse(url!) || !/^https?:$/.test(new URL(url!).protocol)) throw new UsageError(`the URL must be http(s)://HOST:PORT (got '${url}')`);
    const insecure = flag(v, 'insecure');
    const refusal = plainHttpRefusal(url!, insecure);
    if (refusal) throw new UsageError(refusal);
    const token = str(v, 'token');
    const tokenFileFlag = str(v, 'token-file');
    if (token !== undefined && tokenFileFlag !== undefined) throw new UsageError('--token and --token-file exclude each other');
    if (token === undefined && tokenFileFlag === undefined) throw new UsageError('give the remote\'s token: --token TOKEN or --token-file FILE');
    const tokenValue = token ?? readToken(tokenFileFlag!);
    // The remote must answer with this token before it is saved (a typo found now, not at first use).
    if (!flag(v, 'no-check')) await new GroveClient({ url: url!, token: tokenValue }).host();
    const tokenFile = tokenFileFlag ? resolve(tokenFileFlag) : defaultTokenFile(ctx.configDir, name!);
    if (token !== undefined) writeSecretFile(tokenFile, `${token}\n`);
    updateConfigFile(ctx.configPath, (doc) => {
      remotesOf(doc)[name!] = { url: url!, ...(tokenFileFlag ? { 'token-file': tokenFile } : {}), ...(insecure ? { insecure: true } : {}) };
    });
    ctx.out(ctx.json ? json({ name, url, tokenFile, insecure }) : `Added remote '${name}' (${url}); token in ${tokenFile}.\n`);
    return EXIT.OK;
  },
};

function readToken(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new UsageError(`cannot read the token file '${file}'`);
  }
}

interface RemoteRow { name: string; url: string; default: boolean; token: string; insecure: boolean }
const REMOTE_COLUMNS: Column<RemoteRow>[] = [
  { name: 'name', value: (r) => (r.default ? `${r.name} (default)` : r.name) },
  { name: 'url', value: (r) => r.url },
  { name: 'token', value: (r) => r.token },
  { name: 'insecure', value: (r) => (r.insecure ? 'yes' : 'no'), extra: true },
];

export const remoteLs: Command = {
  name: 'remote ls', aliases: ['list'], synopsis: ['remote ls'], summary: 'List remotes (local is this host\'s daemon)',
  args: [0, 0], listing: true, local: true,
  async run(ctx) {
    const def = ctx.config.defaultRemote ?? LOCAL_REMOTE;
    const local = resolveConnection({}, process.env);
    const rows: RemoteRow[] = [
      { name: LOCAL_REMOTE, url: local.url, default: def === LOCAL_REMOTE, token: local.tokenSource, insecure: false },
      ...[...ctx.config.remotes].map(([name, r]) => ({
        name, url: r.url, default: def === name, token: r.tokenFile ?? defaultTokenFile(ctx.configDir, name), insecure: r.insecure,
      })),
    ];
    ctx.listing(rows, REMOTE_COLUMNS);
    return EXIT.OK;
  },
};

export const remoteRm: Command = {
  name: 'remote rm', aliases: ['remove', 'delete'], synopsis: ['remote rm NAME'], summary: 'Forget a remote (and the token file Grove wrote for it)',
  args: [1, 1], vmArg: null, local: true,
  async run(ctx, _v, [name]) {
    known(ctx, name!);
    const entry = ctx.config.remotes.get(name!)!;
    updateConfigFile(ctx.configPath, (doc) => {
      delete remotesOf(doc)[name!];
      const cli = doc['cli'];
      if (typeof cli === 'object' && cli !== null && (cli as Record<string, unknown>)['default-remote'] === name) delete (cli as Record<string, unknown>)['default-remote'];
    });
    // Only the file Grove made; a --token-file of the user's own stays.
    if (entry.tokenFile === null) removeFile(defaultTokenFile(ctx.configDir, name!));
    ctx.out(ctx.json ? json({ removed: name }) : `Removed remote '${name}'.\n`);
    return EXIT.OK;
  },
};

export const remoteDefault: Command = {
  name: 'remote default', synopsis: ['remote default [NAME]'], summary: 'Show, or set, the remote used when none is named (local: this host)',
  args: [0, 1], vmArg: null, local: true,
  async run(ctx, _v, [name]) {
    if (name === undefined) {
      ctx.out(ctx.json ? json({ default: ctx.config.defaultRemote ?? LOCAL_REMOTE }) : `${ctx.config.defaultRemote ?? LOCAL_REMOTE}\n`);
      return EXIT.OK;
    }
    if (name !== LOCAL_REMOTE) known(ctx, name);
    updateConfigFile(ctx.configPath, (doc) => {
      const cli = (typeof doc['cli'] === 'object' && doc['cli'] !== null ? doc['cli'] : (doc['cli'] = {})) as Record<string, unknown>;
      if (name === LOCAL_REMOTE) delete cli['default-remote'];
      else cli['default-remote'] = name;
    });
    ctx.out(ctx.json ? json({ default: name }) : `Default remote: ${name}.\n`);
    return EXIT.OK;
  },
};
