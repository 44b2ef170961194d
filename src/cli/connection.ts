import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RemoteEntry } from '../config/file.js';
import { UsageError } from './command.js';
import { suggest } from './suggest.js';

export interface ConnectionFlags {
  url?: string | undefined;
  token?: string | undefined;
  dataDir?: string | undefined;
}

export interface Connection {
  url: string;
  token: string | undefined;
  /** Where the URL and the token came from, for error hints ("token from /x/token"). */
  urlSource: string;
  tokenSource: string;
}

export const DEFAULT_PORT = 22100;

/**
 * Where the CLI finds its daemon. URL: --url, GROVE_URL, NEMETON_PORT (the published API's variable),
 * then the local daemon: http://127.0.0.1:$GROVE_PORT, default port 22100. Token: --token, GROVE_TOKEN,
 * NEMETON_TOKEN, then `<data-dir>/token` of the local daemon (--data-dir, GROVE_DATA_DIR,
 * $XDG_DATA_HOME/grove, ~/.local/share/grove — the daemon's own defaults).
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Connection {
  let url: string;
  let urlSource: string;
  if (flags.url) [url, urlSource] = [flags.url, '--url'];
  else if (env['GROVE_URL']) [url, urlSource] = [env['GROVE_URL'], 'GROVE_URL'];
  else if (env['NEMETON_PORT']) [url, urlSource] = [`http://127.0.0.1:${env['NEMETON_PORT']}`, 'NEMETON_PORT'];
  else if (env['GROVE_PORT']) [url, urlSource] = [`http://127.0.0.1:${env['GROVE_PORT']}`, 'GROVE_PORT'];
  else [url, urlSource] = [`http://127.0.0.1:${DEFAULT_PORT}`, 'default'];

  let token: string | undefined;
  let tokenSource: string;
  if (flags.token) [token, tokenSource] = [flags.token, '--token'];
  else if (env['GROVE_TOKEN']) [token, tokenSource] = [env['GROVE_TOKEN'], 'GROVE_TOKEN'];
  else if (env['NEMETON_TOKEN']) [token, tokenSource] = [env['NEMETON_TOKEN'], 'NEMETON_TOKEN'];
  else {
    const dataDir = resolve(flags.dataDir ?? env['GROVE_DATA_DIR'] ?? join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'grove'));
    const file = join(dataDir, 'token');
    tokenSource = file;
    try {
      token = readFileSync(file, 'utf8').trim() || undefined;
    } catch (e) {
      tokenSource = `${file} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`;
    }
  }
  return { url: url.trim(), token: token?.trim(), urlSource, tokenSource };
}

/** The name that always means the local daemon (as in incus). */
export const LOCAL_REMOTE = 'local';

/** `<remote>:<rest>` when `<remote>` is a configured remote (or `local`); VM names never hold a colon. */
export function splitRemote(ref: string, remotes: ReadonlyMap<string, RemoteEntry>): { remote: string | null; ref: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*):(.*)$/s.exec(ref);
  if (!m) return { remote: null, ref };
  const name = m[1]!;
  if (name !== LOCAL_REMOTE && !remotes.has(name)) {
    throw new UsageError(`unknown remote '${name}' in '${ref}'${suggest(name, [LOCAL_REMOTE, ...remotes.keys()])}; see grove remote ls`);
  }
  return { remote: name, ref: m[2]! };
}

/** The token file of a remote when none is named: `<config dir>/tokens/<name>` (0600). */
export function defaultTokenFile(configDirPath: string, remote: string): string {
  return join(configDirPath, 'tokens', remote);
}

/** The connection to a configured remote; --token / GROVE_TOKEN still win over its token file. */
export function remoteConnection(name: string, entry: RemoteEntry, flags: ConnectionFlags, configDirPath: string): Connection {
  const file = entry.tokenFile ?? defaultTokenFile(configDirPath, name);
  let token: string | undefined;
  let tokenSource: string;
  if (flags.token) [token, tokenSource] = [flags.token, '--token'];
  else {
    tokenSource = file;
    try {
      token = readFileSync(file, 'utf8').trim() || undefined;
    } catch (e) {
      tokenSource = `${file} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`;
    }
  }
  return { url: entry.url.trim(), token, urlSource: `remote '${name}'`, tokenSource };
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Plain HTTP carries the token in the clear: allowed to a loopback address, elsewhere only when asked
 * (`--insecure`, or `insecure = true` on the remote). Returns the refusal, or null.
 */
export function plainHttpRefusal(url: string, insecure: boolean): string | null {
  const u = new URL(url);
  if (u.protocol !== 'http:' || insecure || isLoopbackHost(u.hostname)) return null;
  return `refusing plain HTTP to ${u.host}: the token would cross the network in the clear; use https:// (grove serve --tls-cert/--tls-key) or pass --insecure`;
}
