import { homedir } from 'node:os';
import { join } from 'node:path';

export type ServiceScope = 'user' | 'system';

export interface UnitOptions {
  scope: ServiceScope;
  /** The node binary and the `grove` script it runs (absolute). */
  node: string;
  grove: string;
  /** Extra `grove serve` flags, e.g. ['--port', '22100']. */
  serveArgs: string[];
  /** System scope: the data directory (default /var/lib/grove, made by systemd as StateDirectory). */
  dataDir?: string;
}

export const UNIT_NAME = 'grove.service';

/**
 * Node flags for the daemon, on its command line because V8 reads them at start-up (bin/grove's shebang
 * line carries the same; a unit test keeps the two equal). An 8× interrupt budget: V8's optimizing compiler
 * is first used for code that stays hot, not for start-up work that runs once — an idle daemon that never
 * loads it stays ~3.5 MiB smaller (BENCHMARKS.md, "Footprint"; docs/decisions.md, "Daemon footprint").
 */
export const DAEMON_NODE_FLAGS = ['--interrupt-budget=540672'] as const;

/** Where systemd looks for the unit: /etc/systemd/system, or the user's ~/.config/systemd/user. */
export function unitDir(scope: ServiceScope, env: NodeJS.ProcessEnv = process.env): string {
  return scope === 'system' ? '/etc/systemd/system' : join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'systemd', 'user');
}

/** systemd's quoting for one ExecStart word: double quotes when needed, `\` and `"` escaped, `%` and `$` doubled. */
function quote(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The unit. `KillMode=process`: stopping or restarting the daemon must not kill the QEMUs it started
 * (they are re-adopted at the next start). Hardening is limited to what QEMU under TCG and KVM tolerates:
 * no MemoryDenyWriteExecute (TCG and V8 generate code), no PrivateDevices (/dev/kvm, /dev/net/tun).
 */
export function serviceUnit(o: UnitOptions): string {
  const serve = [o.node, ...DAEMON_NODE_FLAGS, o.grove, 'serve', ...(o.scope === 'system' ? ['--data-dir', o.dataDir ?? '/var/lib/grove'] : []), ...o.serveArgs];
  const system = o.scope === 'system';
  const lines = [
    '# Written by `grove service install`; `grove service uninstall` removes it.',
    '[Unit]',
    'Description=Grove VM manager (REST, events, MCP for QEMU virtual machines)',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${serve.map(quote).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2s',
    'KillMode=process',
    'TimeoutStopSec=30s',
    'UMask=0077',
    'LimitNOFILE=65536',
    ...(system && (o.dataDir === undefined || o.dataDir === '/var/lib/grove') ? ['StateDirectory=grove', 'StateDirectoryMode=0700'] : []),
    'NoNewPrivileges=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    ...(system ? [
      'ProtectSystem=full',
      'ProtectKernelTunables=yes',
      'ProtectKernelModules=yes',
      'ProtectKernelLogs=yes',
      'ProtectControlGroups=yes',
      'ProtectClock=yes',
      'ProtectHostname=yes',
      'RestrictNamespaces=yes',
      'SystemCallArchitectures=native',
    ] : []),
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}
