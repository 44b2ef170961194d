import type * as Yaml from 'yaml';
import type { CloudInitConfig, SeedFacts } from '../../domain/cloud-init.js';
import { invalid } from '../../domain/errors.js';
import { loadOnFirstUse } from '../../util/load-on-first-use.js';
import { multipartMixed } from './mime.js';

const yamlLib = loadOnFirstUse<typeof Yaml>('yaml');

export const CLOUD_CONFIG_HEADER = '#cloud-config';

/**
 * How the caller's `userData` part merges into Grove's (cloud-init applies a part's own merge type when
 * folding it into what came before): lists are appended after Grove's (users, packages, runcmd, ...),
 * mappings are merged key by key.
 */
export const USER_PART_MERGE_TYPE = 'list(append)+dict(recurse_array,no_replace)+str()';

/**
 * Starts the guest agent where the image had it only as a package: systemd images, and OpenRC ones
 * (Alpine). A fixed string: no caller value reaches this shell.
 */
const START_AGENT = 'systemctl enable --now qemu-guest-agent || { rc-update add qemu-guest-agent default && rc-service qemu-guest-agent start; }';

/**
 * Keys only over SSH, as an sshd drop-in written in cloud-init's first stage, before sshd starts. Not
 * `ssh_pwauth: false`: cloud-init applies that in a later stage by editing sshd_config and restarting
 * sshd, after the server already answers, so a login started then (`grove launch` returns at the first
 * greeting) could be reset. sshd takes the first value it reads and reads its drop-ins first, in name order:
 * `10-` comes before the images' own (`50-cloud-init.conf`, Ubuntu's `60-cloudimg-settings.conf`).
 */
export const KEYS_ONLY_DROP_IN = {
  path: '/etc/ssh/sshd_config.d/10-grove-keys-only.conf',
  permissions: '0644',
  content: '# Written by Grove on first boot: SSH logins with keys only (ssh_pwauth in the VM\'s userData overrides it).\nPasswordAuthentication no\n',
};

/**
 * Every string Grove writes is double-quoted, whatever it holds: a caller's value can never become YAML
 * structure, and words that YAML 1.1 (cloud-init's PyYAML) reads as booleans (`yes`, `off`) stay strings.
 * No line folding, so a long key stays on one line.
 */
function yaml(value: unknown): string {
  return yamlLib().stringify(value, { version: '1.1', defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0, minContentWidth: 0 });
}

/**
 * Checks a caller's cloud-config: the `#cloud-config` header line, YAML that parses (as YAML 1.1, like
 * cloud-init's PyYAML) and a mapping at the top. Returns its top-level keys.
 */
export function parseUserData(text: string): Set<string> {
  const firstLine = text.split('\n', 1)[0]!.replace(/\r$/, '');
  if (firstLine.trimEnd() !== CLOUD_CONFIG_HEADER) {
    throw invalid(`cloudInit.userData must start with a '${CLOUD_CONFIG_HEADER}' line (other user-data formats are not supported)`, { field: 'cloudInit.userData' });
  }
  const { parseDocument, isMap, isScalar } = yamlLib();
  const doc = parseDocument(text, { version: '1.1', prettyErrors: false });
  if (doc.errors.length > 0) {
    throw invalid(`cloudInit.userData is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, { field: 'cloudInit.userData' });
  }
  if (doc.contents === null) return new Set();
  if (!isMap(doc.contents)) throw invalid('cloudInit.userData must be a YAML mapping (key: value lines) after its header', { field: 'cloudInit.userData' });
  const keys = new Set<string>();
  // A collection used as a key (`? [a, b]`) is a node whose String() is its YAML text.
  for (const item of doc.contents.items) keys.add(String(isScalar(item.key) ? item.key.value : item.key));
  return keys;
}

/**
 * Settings given both as a cloudInit field and inside `userData` are ambiguous: refused rather than one
 * silently winning.
 */
export function assertNoConflicts(config: CloudInitConfig): void {
  if (config.userData === null) return;
  const keys = parseUserData(config.userData);
  const both = [
    ...(config.hostname !== null ? ['hostname', 'fqdn'].filter((k) => keys.has(k)).map((k) => [k, 'hostname']) : []),
    ...(config.timezone !== null && keys.has('timezone') ? [['timezone', 'timezone']] : []),
  ];
  if (both.length > 0) {
    const [k, field] = both[0]!;
    throw invalid(`cloudInit.userData sets '${k}' and cloudInit.${field} is given too: set it in one place`, { field: 'cloudInit.userData' });
  }
}

/** NoCloud `meta-data`: the instance id tells cloud-init whether this is a new instance (first boot). */
export function renderMetaData(seed: SeedFacts): string {
  return yaml({ 'instance-id': seed.instanceId, 'local-hostname': seed.hostname });
}

/**
 * Grove's cloud-config: one user with passwordless sudo and bash, holding Grove's key and the caller's;
 * hostname (and fqdn); the guest agent installed and started; the caller's packages and timezone. No
 * package upgrade (slow, and it changes what the image is). Password logins over SSH stay off: keys
 * only (KEYS_ONLY_DROP_IN). A top-level setting the caller's `userData` also makes is left out here, so the caller's wins.
 */
export function renderGroveConfig(config: CloudInitConfig, seed: SeedFacts, groveKey: string, callerKeys: Set<string> = new Set()): string {
  const user: Record<string, unknown> = {
    name: config.user,
    gecos: 'Grove user',
    sudo: 'ALL=(ALL) NOPASSWD:ALL',
    shell: '/bin/bash',
    lock_passwd: config.passwordHash === null,
    ...(config.passwordHash !== null ? { passwd: config.passwordHash } : {}),
    ssh_authorized_keys: [groveKey.trim(), ...config.sshAuthorizedKeys],
  };
  const dot = seed.hostname.indexOf('.');
  const scalars: Record<string, unknown> = {
    hostname: dot === -1 ? seed.hostname : seed.hostname.slice(0, dot),
    fqdn: seed.hostname,
    manage_etc_hosts: true,
    ...(config.timezone !== null ? { timezone: config.timezone } : {}),
  };
  // hostname and fqdn go together: cloud-init derives one from the other, so a caller who sets either
  // gets neither of Grove's.
  const callerNames = callerKeys.has('hostname') || callerKeys.has('fqdn');
  const doc: Record<string, unknown> = { users: [user] };
  for (const [k, v] of Object.entries(scalars)) {
    if (!callerKeys.has(k) && !(callerNames && (k === 'hostname' || k === 'fqdn'))) doc[k] = v;
  }
  // A caller who sets ssh_pwauth decides it alone: cloud-init applies theirs, and this file would win over it.
  if (!callerKeys.has('ssh_pwauth')) doc['write_files'] = [KEYS_ONLY_DROP_IN];
  doc['packages'] = ['qemu-guest-agent', ...config.packages.filter((p) => p !== 'qemu-guest-agent')];
  doc['runcmd'] = [['sh', '-c', START_AGENT]];
  return `${CLOUD_CONFIG_HEADER}\n${yaml(doc)}`;
}

/**
 * NoCloud `user-data`: Grove's cloud-config alone, or with the caller's `userData` as a MIME multipart
 * whose second part is merged after Grove's (see USER_PART_MERGE_TYPE).
 */
export function renderUserData(config: CloudInitConfig, seed: SeedFacts, groveKey: string): string {
  if (config.userData === null) return renderGroveConfig(config, seed, groveKey);
  const callerKeys = parseUserData(config.userData);
  return multipartMixed([
    { contentType: 'text/cloud-config', filename: 'grove.cfg', body: renderGroveConfig(config, seed, groveKey, callerKeys) },
    { contentType: 'text/cloud-config', filename: 'user-data.cfg', body: config.userData, headers: { 'Merge-Type': USER_PART_MERGE_TYPE } },
  ]);
}
