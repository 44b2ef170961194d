import { invalid } from './errors.js';

/** The login Grove creates when the caller names none. */
export const DEFAULT_CLOUD_USER = 'grove';

export const CLOUD_INIT_LIMITS = {
  userData: 64 * 1024,
  password: 1024,
  keys: 32,
  key: 8192,
  packages: 128,
  package: 128,
  hostname: 253,
  timezone: 64,
} as const;

/** Patterns shared by the wire schema and the bundle-manifest check (one definition of what is valid). */
export const CLOUD_INIT_PATTERNS = {
  /** A Linux login name as useradd takes it (no upper case, no leading digit or dash). */
  user: '^[a-z_][a-z0-9_-]{0,31}$',
  /** One RFC 1123 label, or a dotted name of them. */
  hostname: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$',
  /** A tz database name (`UTC`, `Europe/Paris`, `Etc/GMT+1`). */
  timezone: '^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$',
  /** A package name, optionally pinned (`name=version`), as apt, dnf and apk accept them. */
  package: '^[A-Za-z0-9][A-Za-z0-9+._:=~-]*$',
  /** One authorized_keys line: no control characters or line breaks (YAML 1.1 also breaks lines at U+0085, U+2028, U+2029). */
  key: '^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$',
} as const;

/**
 * An authorized_keys line: options (optional), a key type OpenSSH knows by its family (ssh-*, ecdsa-*,
 * sk-*, certificates too), its base64 blob (which always starts with AAAA: the type's length), a comment.
 */
const PUBLIC_KEY_LINE = /(^|\s)(ssh|ecdsa|sk)-[a-z0-9-]+(@openssh\.com)?\s+AAAA[A-Za-z0-9+/]*={0,3}(\s|$)/;

/**
 * Anything else would be written into the guest's authorized_keys and silently never match: the user
 * learns only at login. The common slip, a private key file instead of its .pub, is named.
 */
export function assertPublicKeyLines(keys: readonly string[], where = 'cloudInit.sshAuthorizedKeys'): void {
  keys.forEach((k, i) => {
    if (PUBLIC_KEY_LINE.test(k)) return;
    const hint = /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k) ? ': it is the first line of a private key; give the public key (the .pub file)' : '';
    throw invalid(`${where}[${i}] is not an authorized_keys line (expected '[options] <type> <base64 key> [comment]', e.g. 'ssh-ed25519 AAAAC3Nza… me@laptop')${hint}`,
      { field: 'cloudInit.sshAuthorizedKeys' });
  });
}

/** What a caller gives (`cloudInit` on create): every part optional. */
export interface CloudInitInput {
  user?: string;
  password?: string;
  sshAuthorizedKeys?: string[];
  hostname?: string;
  packages?: string[];
  timezone?: string;
  userData?: string;
}

/**
 * What Grove keeps to (re)write a VM's seed: the input with the password replaced by its crypt(3) hash,
 * so neither the database nor a bundle ever holds the password itself.
 */
export interface CloudInitConfig {
  user: string;
  passwordHash: string | null;
  sshAuthorizedKeys: string[];
  /** As the caller gave it; null: the VM's name is used. */
  hostname: string | null;
  packages: string[];
  timezone: string | null;
  userData: string | null;
}

/** Facts of the seed written for a VM: a clone or an import gets its own. */
export interface SeedFacts {
  instanceId: string;
  hostname: string;
}

/** What a VM's record keeps: the config to write seeds from, and the facts of the seed it has. */
export interface CloudInitRecord {
  config: CloudInitConfig;
  seed: SeedFacts;
}

/** How a VM's cloud-init shows in its details: no password, no user-data body. */
export interface CloudInitSummary {
  user: string;
  hostname: string;
  instanceId: string;
  sshAuthorizedKeys: string[];
  packages: string[];
  timezone: string | null;
  password: boolean;
  userData: boolean;
}

export function summarizeCloudInit({ config, seed }: CloudInitRecord): CloudInitSummary {
  return {
    user: config.user, hostname: seed.hostname, instanceId: seed.instanceId, sshAuthorizedKeys: [...config.sshAuthorizedKeys],
    packages: [...config.packages], timezone: config.timezone, password: config.passwordHash !== null, userData: config.userData !== null,
  };
}

/**
 * The guest's hostname when the caller gives none: the VM's name made a valid hostname label (VM names
 * may hold `_` and `.`, hostnames may not), lower-cased as hostnames conventionally are.
 */
export function hostnameFor(vmName: string, given: string | null): string {
  if (given !== null) return given;
  const label = vmName.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return label === '' ? 'grove-vm' : label;
}

/**
 * Checks a stored or carried config (a bundle manifest's, which no schema validated) against the same
 * rules as the wire schema; throws VALIDATION_FAILED naming the first bad part.
 */
export function parseCloudInitConfig(raw: unknown, where = 'cloudInit'): CloudInitConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(`${where} must be an object`);
  const o = raw as Record<string, unknown>;
  const known = ['user', 'passwordHash', 'sshAuthorizedKeys', 'hostname', 'packages', 'timezone', 'userData'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw invalid(`${where}.${k} is not a known field`);
  const str = (k: string, pattern: string | null, max: number, nullable: boolean): string | null => {
    const v = o[k];
    if (v === null && nullable) return null;
    if (typeof v !== 'string' || v.length === 0 || v.length > max || (pattern !== null && !new RegExp(pattern).test(v))) {
      throw invalid(`${where}.${k} is invalid`);
    }
    return v;
  };
  const list = (k: string, pattern: string, maxItems: number, max: number): string[] => {
    const v = o[k];
    if (!Array.isArray(v) || v.length > maxItems) throw invalid(`${where}.${k} must be a list of at most ${maxItems}`);
    const re = new RegExp(pattern);
    for (const x of v) if (typeof x !== 'string' || x.length === 0 || x.length > max || !re.test(x)) throw invalid(`${where}.${k} holds an invalid entry`);
    return [...(v as string[])];
  };
  const passwordHash = str('passwordHash', '^\\$6\\$[./A-Za-z0-9]{1,16}\\$[./A-Za-z0-9]{86}$', 128, true);
  const user = str('user', CLOUD_INIT_PATTERNS.user, 32, false)!;
  assertNotRoot(user);
  const sshAuthorizedKeys = list('sshAuthorizedKeys', CLOUD_INIT_PATTERNS.key, CLOUD_INIT_LIMITS.keys, CLOUD_INIT_LIMITS.key);
  assertPublicKeyLines(sshAuthorizedKeys, `${where}.sshAuthorizedKeys`);
  return {
    user, passwordHash, sshAuthorizedKeys,
    hostname: str('hostname', CLOUD_INIT_PATTERNS.hostname, CLOUD_INIT_LIMITS.hostname, true),
    packages: list('packages', CLOUD_INIT_PATTERNS.package, CLOUD_INIT_LIMITS.packages, CLOUD_INIT_LIMITS.package),
    timezone: str('timezone', CLOUD_INIT_PATTERNS.timezone, CLOUD_INIT_LIMITS.timezone, true),
    userData: str('userData', null, CLOUD_INIT_LIMITS.userData, true),
  };
}

/** cloud-init disables root logins (`disable_root`); a root "user" would get neither sudo rules nor SSH. */
export function assertNotRoot(user: string): void {
  if (user === 'root') throw invalid(`cloudInit.user may not be 'root': Grove creates a user with passwordless sudo instead`, { field: 'cloudInit.user' });
}
