import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseDaemonConfig } from './config.js';

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'grove-config-'));
  try { return fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

const FILE = `# Grove daemon settings
[daemon]
port = 23000
host = "127.0.0.1"
data-dir = "data"
log-level = "warn"
accel = "tcg"
allowed-hosts = ["grove.lan", "vm-host"]
event-retention = 500
webhook-backoff-ms = 50
`;

test('config precedence: flags > environment > file > defaults', () => {
  withDir((dir) => {
    const file = join(dir, 'config.toml');
    writeFileSync(file, FILE);
    // File only.
    let cfg = parseDaemonConfig(['--config', file], {});
    assert.equal(cfg.port, 23000);
    assert.equal(cfg.dataDir, join(dir, 'data'), 'relative paths are taken from the file\'s folder');
    assert.equal(cfg.logLevel, 'warn');
    assert.equal(cfg.accelerator, 'tcg');
    assert.deepEqual(cfg.allowedHosts, ['grove.lan', 'vm-host']);
    assert.equal(cfg.eventRetention, 500);
    assert.equal(cfg.webhookBackoffMs, 50);
    assert.equal(cfg.configFile, file);
    // Environment over the file.
    cfg = parseDaemonConfig(['--config', file], { GROVE_PORT: '24000', GROVE_LOG_LEVEL: 'debug' });
    assert.equal(cfg.port, 24000);
    assert.equal(cfg.logLevel, 'debug');
    assert.equal(cfg.accelerator, 'tcg');
    // Flags over the environment.
    cfg = parseDaemonConfig(['--config', file, '--port', '25000'], { GROVE_PORT: '24000' });
    assert.equal(cfg.port, 25000);
    // Defaults when nothing is said (the default path, $XDG_CONFIG_HOME/grove/config.toml, absent).
    cfg = parseDaemonConfig([], { XDG_CONFIG_HOME: join(dir, 'none') });
    assert.equal(cfg.port, 22100);
    assert.equal(cfg.logLevel, 'info');
    assert.equal(cfg.configFile, null);
  });
});

test('config file: found at $XDG_CONFIG_HOME/grove/config.toml, or GROVE_CONFIG', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'grove'));
    writeFileSync(join(dir, 'grove', 'config.toml'), '[daemon]\nport = 23001\n');
    assert.equal(parseDaemonConfig([], { XDG_CONFIG_HOME: dir }).port, 23001);
    writeFileSync(join(dir, 'other.toml'), '[daemon]\nport = 23002\n');
    assert.equal(parseDaemonConfig([], { XDG_CONFIG_HOME: dir, GROVE_CONFIG: join(dir, 'other.toml') }).port, 23002);
  });
});

test('a bad config file is an error naming the file and the line', () => {
  withDir((dir) => {
    const file = join(dir, 'config.toml');
    const cases: [string, RegExp][] = [
      ['[daemon]\nport = 22100\nhost = \n', /config\.toml:3:/],
      ['[daemon]\nport = 22100\n\nprot = 22101\n', /config\.toml:4: unknown setting 'prot' in \[daemon\]/],
      ['[daemon]\nport = "many"\n', /config\.toml:2: port must be a whole number/],
      ['[demon]\nport = 1\n', /config\.toml:1: unknown section 'demon'/],
      ['[daemon]\n\nport = 80\n', /port must be a whole number from 1024/],
      ['[daemon]\ntls-cert = "c.pem"\n', /both a certificate and a key/],
    ];
    for (const [text, expected] of cases) {
      writeFileSync(file, text);
      assert.throws(() => parseDaemonConfig(['--config', file], {}), (e: unknown) => e instanceof ConfigError && expected.test(e.message), text);
    }
    assert.throws(() => parseDaemonConfig(['--config', join(dir, 'missing.toml')], {}), /cannot read the config file/);
  });
});

test('TLS: --tls-cert and --tls-key give an https daemon', () => {
  const cfg = parseDaemonConfig(['--tls-cert', '/tmp/c.pem', '--tls-key', '/tmp/k.pem'], { XDG_CONFIG_HOME: '/nonexistent' });
  assert.deepEqual(cfg.tls, { cert: '/tmp/c.pem', key: '/tmp/k.pem' });
});
