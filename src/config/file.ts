import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TomlError, parse, stringify } from 'smol-toml';
import { errorMessage } from '../util/errors.js';

/**
 * `config.toml`: one file for the daemon (`[daemon]`, the settings `grove serve` takes as flags or
 * variables) and the CLI (`[cli]`, `[remotes.NAME]`). Read once at start-up; any fault in it is an error
 * naming the file and line, never a silently ignored setting.
 */

export class ConfigFileError extends Error {}

/** Keys of `[daemon]`: the flag names of `grove serve`, with the type each takes. */
export const DAEMON_KEYS = {
  port: 'integer', host: 'string', 'data-dir': 'path', 'token-file': 'path', qemu: 'string', 'qemu-img': 'string',
  accel: 'string', 'allowed-hosts': 'string-array', 'event-retention': 'integer', 'log-level': 'string', catalog: 'string',
  'webhook-backoff-ms': 'integer', 'tls-cert': 'path', 'tls-key': 'path', 'console-history-bytes': 'integer',
} as const;
export type DaemonKey = keyof typeof DAEMON_KEYS;

export const REMOTE_KEYS = { url: 'string', 'token-file': 'path', insecure: 'boolean' } as const;
export const CLI_KEYS = { 'default-remote': 'string' } as const;

export interface RemoteEntry {
  url: string;
  /** The file holding the remote's token (mode 0600), absolute. */
  tokenFile: string | null;
  insecure: boolean;
}

export interface ConfigFile {
  /** The file's path, or null when there is none (the default path is absent). */
  path: string | null;
  /** `[daemon]` values as text (arrays joined by commas), relative paths made absolute from the file's folder. */
  daemon: Partial<Record<DaemonKey, string>>;
  defaultRemote: string | null;
  remotes: Map<string, RemoteEntry>;
}

export const EMPTY_CONFIG: ConfigFile = { path: null, daemon: {}, defaultRemote: null, remotes: new Map() };

/** `$XDG_CONFIG_HOME/grove` or `~/.config/grove`. */
export function configDir(env: NodeJS.ProcessEnv): string {
  return join(env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config'), 'grove');
}

/** `--config`, else GROVE_CONFIG, else `<configDir>/config.toml`; `explicit` when named (then it must exist). */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): { path: string; explicit: boolean } {
  if (flag) return { path: resolve(flag), explicit: true };
  if (env['GROVE_CONFIG']) return { path: resolve(env['GROVE_CONFIG']), explicit: true };
  return { path: join(configDir(env), 'config.toml'), explicit: false };
}

export function loadConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv): ConfigFile {
  const { path, explicit } = configPath(flag, env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return EMPTY_CONFIG;
    throw new ConfigFileError(`cannot read the config file ${path}: ${errorMessage(e)}`);
  }
  return parseConfigText(text, path);
}

/** The 1-based line where `key` is set inside `[section]` (for messages), or the section's own line. */
function lineOf(text: string, section: string, key?: string): number {
  const lines = text.split('\n');
  const header = new RegExp(`^\\s*\\[\\s*${section.replace(/\./g, '\\s*\\.\\s*')}\\s*\\]`);
  let inSection = false;
  let sectionLine = 1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^\s*\[/.test(l)) {
      inSection = header.test(l);
      if (inSection) sectionLine = i + 1;
      continue;
    }
    if (inSection && key !== undefined && new RegExp(`^\\s*["']?${key.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}["']?\\s*=`).test(l)) return i + 1;
  }
  return sectionLine;
}

export function parseConfigText(text: string, path: string): ConfigFile {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) {
      throw new ConfigFileError(`${path}:${e.line}:${e.column}: ${e.message.replace(/^Invalid TOML document: /, '').split('\n')[0]}`);
    }
    throw new ConfigFileError(`${path}: ${errorMessage(e)}`);
  }
  const at = (section: string, key?: string) => `${path}:${lineOf(text, section, key)}`;
  const base = path.replace(/\/[^/]*$/, '') || '/';
  const table = (name: string): Record<string, unknown> => {
    const v = doc[name];
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigFileError(`${at(name)}: '${name}' must be a table ([${name}])`);
    return v as Record<string, unknown>;
  };
  for (const k of Object.keys(doc)) {
    if (!['daemon', 'cli', 'remotes'].includes(k)) throw new ConfigFileError(`${path}:${lineOf(text, k)}: unknown section '${k}' (expected [daemon], [cli] or [remotes.NAME])`);
  }
  const value = (section: string, key: string, v: unknown, type: string): string | boolean => {
    const bad = (what: string) => new ConfigFileError(`${at(section, key)}: ${key} must be ${what} (in [${section}])`);
    switch (type) {
      case 'integer': if (typeof v !== 'number' && typeof v !== 'bigint') throw bad('a whole number'); return String(v);
      case 'boolean': if (typeof v !== 'boolean') throw bad('true or false'); return v;
      case 'string-array':
        if (typeof v === 'string') return v;
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad('a list of strings');
        return v.join(',');
      case 'path': if (typeof v !== 'string' || v === '') throw bad('a path'); return resolve(base, v.replace(/^~(?=\/|$)/, homedir()));
      default: if (typeof v !== 'string') throw bad('a string'); return v;
    }
  };
  const daemonTable = table('daemon');
  const daemon: ConfigFile['daemon'] = {};
  for (const [k, v] of Object.entries(daemonTable)) {
    const type = (DAEMON_KEYS as Record<string, string>)[k];
    if (!type) throw new ConfigFileError(`${at('daemon', k)}: unknown setting '${k}' in [daemon] (known: ${Object.keys(DAEMON_KEYS).join(', ')})`);
    // A catalog may be a URL: only a file is made absolute.
    daemon[k as DaemonKey] = String(k === 'catalog' && typeof v === 'string' && /^https?:\/\//i.test(v) ? v : value('daemon', k, v, type));
  }
  const cli = table('cli');
  let defaultRemote: string | null = null;
  for (const [k, v] of Object.entries(cli)) {
    if (!(k in CLI_KEYS)) throw new ConfigFileError(`${at('cli', k)}: unknown setting '${k}' in [cli] (known: ${Object.keys(CLI_KEYS).join(', ')})`);
    defaultRemote = String(value('cli', k, v, 'string'));
  }
  const remotes = new Map<string, RemoteEntry>();
  for (const [name, entry] of Object.entries(table('remotes'))) {
    const section = `remotes.${name}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigFileError(`${at(section)}: [${section}] must be a table`);
    const r: RemoteEntry = { url: '', tokenFile: null, insecure: false };
    for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
      const type = (REMOTE_KEYS as Record<string, string>)[k];
      if (!type) throw new ConfigFileError(`${at(section, k)}: unknown setting '${k}' in [${section}] (known: ${Object.keys(REMOTE_KEYS).join(', ')})`);
      const val = value(section, k, v, type);
      if (k === 'url') r.url = String(val);
      else if (k === 'token-file') r.tokenFile = String(val);
      else r.insecure = val === true;
    }
    if (!r.url) throw new ConfigFileError(`${at(section)}: [${section}] needs a url`);
    remotes.set(name, r);
  }
  return { path, daemon, defaultRemote, remotes };
}

/**
 * Rewrites the file with `change` applied to its parsed document (written as TOML again: comments are
 * not kept). The folder is made 0700 when created, the file is 0600.
 */
export function updateConfigFile(path: string, change: (doc: Record<string, unknown>) => void): void {
  let doc: Record<string, unknown> = {};
  try {
    doc = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigFileError(`cannot update ${path}: ${errorMessage(e)}`);
  }
  change(doc);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, stringify(doc) + '\n', { mode: 0o600 });
}

/** Writes a secret file readable by its owner only (its folder 0700). */
export function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}
