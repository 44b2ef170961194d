import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { AcceleratorChoice } from '../hypervisor/qemu/accelerator.js';
import { ConfigFileError, loadConfigFile, type DaemonKey } from '../config/file.js';

export interface DaemonConfig {
  host: string;
  port: number;
  dataDir: string;
  tokenFile: string | null;
  tokenValue: string | null;
  qemuBinary: string;
  qemuImgBinary: string;
  accelerator: AcceleratorChoice;
  allowedHosts: string[];
  eventRetention: number;
  logLevel: string;
  /** First webhook retry delay (doubles per attempt); tests shrink it with GROVE_WEBHOOK_BACKOFF_MS. */
  webhookBackoffMs: number;
  /** The distro catalog replacing the shipped one: a file path (made absolute) or an http(s) URL; null: shipped. */
  catalog: string | null;
  /** Console history kept per VM, in bytes; older output is let go (offsets stay absolute). */
  consoleHistoryBytes: number;
  /** Serve HTTPS with this certificate and key (PEM files); null: plain HTTP. */
  tls: { cert: string; key: string } | null;
  /** The config file read, or null when there was none. */
  configFile: string | null;
}

export class ConfigError extends Error {}

/**
 * Flags win over environment variables, which win over the config file (`[daemon]` of
 * `$XDG_CONFIG_HOME/grove/config.toml`, or `--config` / GROVE_CONFIG), which wins over defaults.
 */
export function parseDaemonConfig(argv: string[], env: NodeJS.ProcessEnv): DaemonConfig {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'token-file': { type: 'string' },
      qemu: { type: 'string' },
      'qemu-img': { type: 'string' },
      accel: { type: 'string' },
      'allowed-host': { type: 'string', multiple: true },
      'event-retention': { type: 'string' },
      'log-level': { type: 'string' },
      catalog: { type: 'string' },
      'console-history-bytes': { type: 'string' },
      config: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  let file;
  try {
    file = loadConfigFile(flags.config, env);
  } catch (e) {
    if (e instanceof ConfigFileError) throw new ConfigError(e.message);
    throw e;
  }
  // The file's values sit under the flags and the environment: `values.x ?? env ?? default` keeps the order.
  const fromFile = (k: DaemonKey): string | undefined => file.daemon[k];
  const values = {
    port: flags.port, host: flags.host, 'data-dir': flags['data-dir'], 'token-file': flags['token-file'], qemu: flags.qemu,
    'qemu-img': flags['qemu-img'], accel: flags.accel, 'event-retention': flags['event-retention'], 'log-level': flags['log-level'],
    catalog: flags.catalog, 'allowed-host': flags['allowed-host'], 'tls-cert': flags['tls-cert'], 'tls-key': flags['tls-key'],
    'console-history-bytes': flags['console-history-bytes'],
  };
  const pick = (flag: string | undefined, envName: string, key: DaemonKey): string | undefined => flag ?? env[envName] ?? fromFile(key);
  const portText = pick(values.port, 'GROVE_PORT', 'port') ?? '22100';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1024 || port > 65535) {
    throw new ConfigError(`port must be a whole number from 1024 to 65535 (got '${portText}')`);
  }
  const accel = (pick(values.accel, 'GROVE_ACCEL', 'accel') ?? 'auto') as AcceleratorChoice;
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new ConfigError(`accelerator must be auto, kvm or tcg (got '${accel}')`);
  const retentionText = pick(values['event-retention'], 'GROVE_EVENT_RETENTION', 'event-retention') ?? '10000';
  const eventRetention = Number(retentionText);
  if (!Number.isInteger(eventRetention) || eventRetention < 100) throw new ConfigError(`event retention must be an integer ≥ 100 (got '${retentionText}')`);
  const backoffText = pick(undefined, 'GROVE_WEBHOOK_BACKOFF_MS', 'webhook-backoff-ms') ?? '1000';
  const webhookBackoffMs = Number(backoffText);
  if (!/^\d+$/.test(backoffText) || webhookBackoffMs < 10 || webhookBackoffMs > 600_000) throw new ConfigError(`GROVE_WEBHOOK_BACKOFF_MS must be 10 to 600000 (got '${backoffText}')`);
  const dataDir = resolve(pick(values['data-dir'], 'GROVE_DATA_DIR', 'data-dir') ?? join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'grove'));
  const catalogText = pick(values.catalog, 'GROVE_CATALOG', 'catalog') ?? '';
  const catalog = catalogText === '' ? null : /^https?:\/\//i.test(catalogText) ? catalogText : resolve(catalogText);
  const historyText = pick(values['console-history-bytes'], 'GROVE_CONSOLE_HISTORY_BYTES', 'console-history-bytes') ?? String(64 * 1024 * 1024);
  const consoleHistoryBytes = Number(historyText);
  if (!/^\d+$/.test(historyText) || consoleHistoryBytes < 65536 || !Number.isSafeInteger(consoleHistoryBytes)) {
    throw new ConfigError(`console history must be a whole number of bytes, at least 65536 (got '${historyText}')`);
  }
  // Names add up across the flags and the variable (as before); the file's list counts when neither gives any.
  const given = [...(values['allowed-host'] ?? []), ...(env['GROVE_ALLOWED_HOSTS'] ?? '').split(',')].map((h) => h.trim()).filter(Boolean);
  const allowedHosts = given.length > 0 ? given : (fromFile('allowed-hosts') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  const tokenFile = values['token-file'] ?? (env['GROVE_TOKEN'] ? undefined : fromFile('token-file'));
  const tlsCert = pick(values['tls-cert'], 'GROVE_TLS_CERT', 'tls-cert');
  const tlsKey = pick(values['tls-key'], 'GROVE_TLS_KEY', 'tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('TLS needs both a certificate and a key (--tls-cert and --tls-key)');
  return {
    host: pick(values.host, 'GROVE_HOST', 'host') ?? '127.0.0.1',
    port,
    dataDir,
    tokenFile: tokenFile ? resolve(tokenFile) : null,
    tokenValue: tokenFile ? null : (env['GROVE_TOKEN'] ?? null),
    qemuBinary: pick(values.qemu, 'GROVE_QEMU', 'qemu') ?? 'qemu-system-x86_64',
    qemuImgBinary: pick(values['qemu-img'], 'GROVE_QEMU_IMG', 'qemu-img') ?? 'qemu-img',
    accelerator: accel,
    allowedHosts,
    eventRetention,
    logLevel: pick(values['log-level'], 'GROVE_LOG_LEVEL', 'log-level') ?? 'info',
    webhookBackoffMs,
    catalog,
    consoleHistoryBytes,
    tls: tlsCert !== undefined && tlsKey !== undefined ? { cert: resolve(tlsCert), key: resolve(tlsKey) } : null,
    configFile: file.path,
  };
}
