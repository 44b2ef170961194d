import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { AcceleratorChoice } from '../hypervisor/qemu/accelerator.js';

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
}

export class ConfigError extends Error {}

/** Flags win over environment variables, which win over defaults (SPEC §1). */
export function parseDaemonConfig(argv: string[], env: NodeJS.ProcessEnv): DaemonConfig {
  const { values } = parseArgs({
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
    },
    strict: true,
    allowPositionals: false,
  });
  const portText = values.port ?? env['GROVE_PORT'] ?? '22100';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1024 || port > 65535) {
    throw new ConfigError(`port must be a whole number from 1024 to 65535 (got '${portText}')`);
  }
  const accel = (values.accel ?? env['GROVE_ACCEL'] ?? 'auto') as AcceleratorChoice;
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new ConfigError(`accelerator must be auto, kvm or tcg (got '${accel}')`);
  const retentionText = values['event-retention'] ?? env['GROVE_EVENT_RETENTION'] ?? '10000';
  const eventRetention = Number(retentionText);
  if (!Number.isInteger(eventRetention) || eventRetention < 100) throw new ConfigError(`event retention must be an integer ≥ 100 (got '${retentionText}')`);
  const backoffText = env['GROVE_WEBHOOK_BACKOFF_MS'] ?? '1000';
  const webhookBackoffMs = Number(backoffText);
  if (!/^\d+$/.test(backoffText) || webhookBackoffMs < 10 || webhookBackoffMs > 600_000) throw new ConfigError(`GROVE_WEBHOOK_BACKOFF_MS must be 10 to 600000 (got '${backoffText}')`);
  const dataDir = resolve(values['data-dir'] ?? env['GROVE_DATA_DIR'] ?? join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'grove'));
  const catalogText = values.catalog ?? env['GROVE_CATALOG'] ?? '';
  const catalog = catalogText === '' ? null : /^https?:\/\//i.test(catalogText) ? catalogText : resolve(catalogText);
  const historyText = values['console-history-bytes'] ?? env['GROVE_CONSOLE_HISTORY_BYTES'] ?? String(64 * 1024 * 1024);
  const consoleHistoryBytes = Number(historyText);
  if (!/^\d+$/.test(historyText) || consoleHistoryBytes < 65536 || !Number.isSafeInteger(consoleHistoryBytes)) {
    throw new ConfigError(`console history must be a whole number of bytes, at least 65536 (got '${historyText}')`);
  }
  const allowedHosts = [...(values['allowed-host'] ?? []), ...(env['GROVE_ALLOWED_HOSTS'] ?? '').split(',')].map((h) => h.trim()).filter(Boolean);
  return {
    host: values.host ?? env['GROVE_HOST'] ?? '127.0.0.1',
    port,
    dataDir,
    tokenFile: values['token-file'] ? resolve(values['token-file']) : null,
    tokenValue: values['token-file'] ? null : (env['GROVE_TOKEN'] ?? null),
    qemuBinary: values.qemu ?? env['GROVE_QEMU'] ?? 'qemu-system-x86_64',
    qemuImgBinary: values['qemu-img'] ?? env['GROVE_QEMU_IMG'] ?? 'qemu-img',
    accelerator: accel,
    allowedHosts,
    eventRetention,
    logLevel: values['log-level'] ?? env['GROVE_LOG_LEVEL'] ?? 'info',
    webhookBackoffMs,
    catalog,
    consoleHistoryBytes,
  };
}
