import { errorMessage } from '../util/errors.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { GroveClient } from '../client/index.js';
import type { ConfigFile } from '../config/file.js';
import type { Connection } from './connection.js';
import type { Column, Format } from './format.js';
import { suggest } from './suggest.js';

/** Exit codes (documented in `grove --help`). */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, UNREACHABLE: 3, TIMEOUT: 124 } as const;

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Context {
  client: GroveClient;
  conn: Connection;
  json: boolean;
  out(text: string): void;
  err(text: string): void;
  /** Raw bytes to stdout (guest output that is not text); resolves once written. */
  outBytes(data: Uint8Array): Promise<void>;
  /** `--format` (table unless asked; `--json` is json). */
  format: Format;
  /** Prints a listing in the format asked for, with the `--columns` asked for. */
  listing<T>(rows: T[], columns: Column<T>[], raw?: unknown): void;
  /** The config file (remotes, defaults); empty when there is none. */
  config: ConfigFile;
  /** Where the config file is (or would be) and the folder of remote tokens. */
  configPath: string;
  configDir: string;
  /** The remote the command speaks to (null: the local daemon or --url). */
  remote: string | null;
  /** A client for another remote (`local` is the local daemon), e.g. for `ls --all-remotes`. */
  clientFor(remote: string): GroveClient;
}

export interface Command {
  /** `verb` or `group verb`. */
  name: string;
  /** Other names it answers to (`list` for `ls`); for a group member, the member word only. */
  aliases?: string[];
  /** Left out of `grove --help` and completion (`__complete`). */
  hidden?: boolean;
  /** Takes `--format` and `--columns` (and prints through `ctx.listing`). */
  listing?: boolean;
  /**
   * Which positional names a VM, so `<remote>:<vm>` works there; default: where the first synopsis
   * line says VM (or NAME for create-like commands, set explicitly); null: none.
   */
  vmArg?: number | null;
  /** Talks to no daemon (completion, remote): run without a connection check. */
  local?: boolean;
  /** Usage lines after `grove `. */
  synopsis: string[];
  summary: string;
  /** The command with its arguments for the overview in `grove --help` (default: synopsis up to the first flag). */
  brief?: string;
  /** Extra help text shown by `grove CMD --help`. */
  help?: string;
  options?: Options;
  /** Minimum and maximum positionals (before any `--`). */
  args: [number, number];
  /** Accepts a `-- WORDS...` tail (exec). */
  tail?: boolean;
  run(ctx: Context, values: Values, positionals: string[], tail: string[]): Promise<number>;
}

/** Flags every command takes. */
export const GLOBAL_OPTIONS: Options = {
  url: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  remote: { type: 'string' },
  config: { type: 'string' },
  insecure: { type: 'boolean' },
};

/** Flags of listing commands. */
export const LISTING_OPTIONS: Options = {
  format: { type: 'string', short: 'o' },
  columns: { type: 'string' },
};

/** Every flag a command takes (its own, the global ones, the listing ones). */
export function commandOptions(cmd: Command): Options {
  return { ...GLOBAL_OPTIONS, ...(cmd.listing ? LISTING_OPTIONS : {}), ...(cmd.options ?? {}) };
}

/** The words of the first synopsis line after the command's name, without brackets (`VM`, `NAME`...). */
export function argWords(cmd: Command): string[] {
  const words = cmd.synopsis[0]!.replace(/\[-[^\]]*\]/g, ' ').split(/\s+/).slice(cmd.name.split(' ').length);
  return words.filter((w) => /^\[?[A-Z][A-Z0-9_|:/.-]*\]?$/.test(w)).map((w) => w.replace(/^\[|\]$/g, ''));
}

/** The positional that names a VM (see Command.vmArg). */
export function vmArgIndex(cmd: Command): number | null {
  if (cmd.vmArg !== undefined) return cmd.vmArg;
  const i = argWords(cmd).indexOf('VM');
  return i === -1 ? null : i;
}

export function parseCommandArgs(cmd: Command, argv: string[]): { values: Values; positionals: string[]; tail: string[] } {
  let head = argv;
  let tail: string[] = [];
  const dd = argv.indexOf('--');
  if (cmd.tail && dd !== -1) {
    head = argv.slice(0, dd);
    tail = argv.slice(dd + 1);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: head, options: commandOptions(cmd), strict: true, allowPositionals: true });
  } catch (e) {
    const msg = errorMessage(e).replace(/\. To specify a positional argument.*$/s, '');
    const unknown = /^Unknown option '(-{1,2})([^']+)'/.exec(msg);
    if (unknown) {
      const names = Object.keys(commandOptions(cmd));
      throw new UsageError(`unknown flag '${unknown[1]}${unknown[2]}'${suggest(unknown[2]!, names).replace(/'([^']+)'/g, "'--$1'")}`);
    }
    throw new UsageError(msg);
  }
  const values = parsed.values as Values;
  if (values['help']) return { values, positionals: parsed.positionals, tail };
  let positionals = parsed.positionals;
  if (cmd.tail && dd === -1) {
    // `grove exec VM uname` without `--` also works; options meant for the guest then need the `--`.
    tail = positionals.slice(cmd.args[0]);
    positionals = positionals.slice(0, cmd.args[0]);
  }
  const [min, max] = cmd.args;
  if (positionals.length < min) throw new UsageError(`missing argument${min - positionals.length > 1 ? 's' : ''}`);
  if (positionals.length > max) throw new UsageError(`unexpected argument '${positionals[max]}'`);
  return { values, positionals, tail };
}

export function str(values: Values, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function flag(values: Values, key: string): boolean {
  return values[key] === true;
}

export function list(values: Values, key: string): string[] {
  const v = values[key];
  return Array.isArray(v) ? (v as unknown[]).filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

export function int(values: Values, key: string, opts: { min?: number; max?: number } = {}): number | undefined {
  const v = str(values, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    throw new UsageError(`--${key} must be a whole number${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` ≤ ${opts.max}` : ''} (got '${v}')`);
  }
  return n;
}

export function seconds(values: Values, key: string): number | undefined {
  const v = str(values, key);
  if (v === undefined) return undefined;
  const n = Number(v.replace(/s$/, ''));
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new UsageError(`--${key} must be a number of seconds, more than 0 and at most 3600 (got '${v}')`);
  return n;
}

/** `512`, `512M`, `512MiB`, `2G`, `2GiB` → MiB (a bare number is MiB). */
export function sizeMiB(values: Values, key: string): number | undefined {
  return size(values, key, 'M');
}

/** `10`, `10G`, `10GiB` → GiB (a bare number is GiB). */
export function sizeGiB(values: Values, key: string): number | undefined {
  return size(values, key, 'G');
}

function size(values: Values, key: string, unit: 'M' | 'G'): number | undefined {
  const v = str(values, key);
  if (v === undefined) return undefined;
  const m = /^(\d+)\s*(M|MB|MiB|G|GB|GiB|T|TB|TiB)?$/i.exec(v.trim());
  if (!m) throw new UsageError(`--${key} must be a size like ${unit === 'M' ? '512, 512M or 2G' : '10 or 10G'} (got '${v}')`);
  const n = Number(m[1]);
  const u = (m[2] ?? unit)[0]!.toUpperCase();
  const mib = u === 'M' ? n : u === 'G' ? n * 1024 : n * 1024 * 1024;
  if (unit === 'M') return mib;
  if (mib % 1024 !== 0) throw new UsageError(`--${key} must be a whole number of GiB (got '${v}')`);
  return mib / 1024;
}
