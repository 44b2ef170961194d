import { errorMessage } from '../util/errors.js';
import { parseDaemonConfig } from '../daemon/config.js';
import { GROVE_VERSION, makeLogger, startDaemon } from '../daemon/daemon.js';
import { logUnhandledRejections } from '../daemon/unhandled-rejections.js';

export const SERVE_USAGE = `Usage:
  grove serve [--port N] [--host ADDR] [--data-dir DIR] [--token-file FILE] [--accel auto|kvm|tcg]
              [--allowed-host NAME]... [--qemu PATH] [--qemu-img PATH] [--event-retention N] [--log-level LEVEL]
              [--catalog FILE|URL] [--console-history-bytes N] [--tls-cert FILE --tls-key FILE] [--config FILE]

Environment: GROVE_PORT, GROVE_HOST, GROVE_DATA_DIR, GROVE_TOKEN, GROVE_ACCEL, GROVE_ALLOWED_HOSTS,
             GROVE_QEMU, GROVE_QEMU_IMG, GROVE_EVENT_RETENTION, GROVE_LOG_LEVEL, GROVE_CATALOG,
             GROVE_TLS_CERT, GROVE_TLS_KEY, GROVE_WEBHOOK_BACKOFF_MS, GROVE_CONFIG,
             GROVE_CONSOLE_HISTORY_BYTES

Config file: --config FILE, else GROVE_CONFIG, else $XDG_CONFIG_HOME/grove/config.toml (~/.config/grove/...).
Its [daemon] table takes the flag names as keys (port = 22100, data-dir = "...", allowed-hosts = ["a"],
tls-cert = "...", webhook-backoff-ms = 1000). Flags win over variables, variables over the file, the file
over the defaults.
`;

export async function serve(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`grove serve — run the daemon\n\n${SERVE_USAGE}`);
    return;
  }
  let cfg;
  try {
    cfg = parseDaemonConfig(args, process.env);
  } catch (e) {
    process.stderr.write(`grove serve: ${errorMessage(e)}\n`);
    process.exit(2);
  }
  const log = makeLogger(cfg.logLevel);
  logUnhandledRejections(log);
  const daemon = await startDaemon(cfg, log).catch((e: Error & { code?: string }) => {
    const hint = e.code === 'EADDRINUSE' ? ` (port ${cfg.port} is taken: another grove running? use --port)` : '';
    process.stderr.write(`grove serve: cannot start: ${e.message}${hint}\n`);
    process.exit(1);
  });
  const lines = [
    `Grove ${GROVE_VERSION} listening on ${daemon.url}`,
    `  API docs:  ${daemon.url}/api/v1/docs`,
    `  Data dir:  ${cfg.dataDir}`,
    ...(cfg.configFile ? [`  Config:    ${cfg.configFile}`] : []),
    daemon.tokenCreated
      ? `  Token (shown once, saved to ${daemon.tokenOrigin}, mode 0600):\n    ${daemon.token}`
      : `  Token:     from ${daemon.tokenOrigin}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const stop = (sig: string) => {
    log.info({ signal: sig }, 'shutting down; running VMs keep running');
    // A client that never lets go must not keep the daemon alive.
    setTimeout(() => process.exit(0), 10_000).unref();
    void daemon.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
