import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, UsageError, flag, str, type Command, type Values } from '../command.js';
import { UNIT_NAME, serviceUnit, unitDir, type ServiceScope } from '../service-unit.js';

const SCOPE_OPTIONS = { user: { type: 'boolean' }, system: { type: 'boolean' }, 'unit-dir': { type: 'string' } } as const;

const SCOPE_HELP = `--user / --system: a user unit (~/.config/systemd/user; the VMs run as you) or a system unit
(/etc/systemd/system; data in /var/lib/grove). Default: --system as root, --user otherwise.
--unit-dir DIR writes and removes the unit there instead (packaging, tests); systemctl is then not run.`;

function scopeOf(v: Values): ServiceScope {
  if (flag(v, 'user') && flag(v, 'system')) throw new UsageError('give --user or --system, not both');
  if (flag(v, 'system')) return 'system';
  if (flag(v, 'user')) return 'user';
  return process.getuid?.() === 0 ? 'system' : 'user';
}

/** The `grove` script this CLI runs from (bin/grove beside dist/). */
function groveScript(): string {
  return resolve(fileURLToPath(new URL('../../../../bin/grove', import.meta.url)));
}

function systemctl(scope: ServiceScope, args: string[]): { code: number; output: string } {
  const r = spawnSync('systemctl', [...(scope === 'user' ? ['--user'] : []), ...args], { encoding: 'utf8' });
  if (r.error) return { code: 127, output: `systemctl could not run: ${r.error.message}` };
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}`.trim() };
}

export const serviceInstall: Command = {
  name: 'service install',
  synopsis: ['service install [--user | --system] [--port PORT] [--data-dir DIR] [--no-start] [--print]'],
  summary: 'Install the daemon as a systemd service, enable and start it',
  help: `${SCOPE_HELP}
--port PORT and --data-dir DIR (system scope) are passed to 'grove serve'. --no-start writes and enables
the unit without starting it. --print only prints the unit. The unit restarts the daemon on failure and,
with KillMode=process, never kills running VMs: a restarted daemon re-adopts them.`,
  options: { ...SCOPE_OPTIONS, port: { type: 'string' }, 'no-start': { type: 'boolean' }, print: { type: 'boolean' } },
  args: [0, 0],
  async run(ctx, v) {
    const scope = scopeOf(v);
    const port = str(v, 'port');
    if (port !== undefined && !/^\d+$/.test(port)) throw new UsageError(`--port must be a number (got '${port}')`);
    const dataDir = str(v, 'data-dir');
    if (dataDir !== undefined && scope === 'user') throw new UsageError('--data-dir is for --system; a user service uses your own data dir ($XDG_DATA_HOME/grove)');
    const unit = serviceUnit({
      scope, node: process.execPath, grove: groveScript(), serveArgs: port ? ['--port', port] : [],
      ...(dataDir !== undefined ? { dataDir: resolve(dataDir) } : {}),
    });
    if (flag(v, 'print')) { ctx.out(unit); return EXIT.OK; }
    const custom = str(v, 'unit-dir');
    const dir = custom ?? unitDir(scope);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, UNIT_NAME);
    writeFileSync(file, unit, { mode: 0o644 });
    ctx.out(`Wrote ${file}\n`);
    if (custom !== undefined) return EXIT.OK;
    for (const args of [['daemon-reload'], ['enable', ...(flag(v, 'no-start') ? [] : ['--now']), UNIT_NAME]]) {
      const r = systemctl(scope, args);
      if (r.code !== 0) {
        ctx.err(`grove: systemctl ${scope === 'user' ? '--user ' : ''}${args.join(' ')} failed (exit ${r.code})${r.output ? `:\n${r.output}` : ''}\n`);
        return EXIT.ERROR;
      }
    }
    ctx.out(flag(v, 'no-start') ? `Enabled ${UNIT_NAME} (${scope}); start it with: systemctl${scope === 'user' ? ' --user' : ''} start grove\n`
      : `Enabled and started ${UNIT_NAME} (${scope}). Status: grove service status${scope === 'user' ? ' --user' : ''}\n`);
    return EXIT.OK;
  },
};

export const serviceStatus: Command = {
  name: 'service status',
  synopsis: ['service status [--user | --system]'],
  summary: 'Whether the service is installed and running, and whether the daemon answers',
  help: SCOPE_HELP,
  options: SCOPE_OPTIONS,
  args: [0, 0],
  async run(ctx, v) {
    const scope = scopeOf(v);
    const file = join(str(v, 'unit-dir') ?? unitDir(scope), UNIT_NAME);
    const installed = existsSync(file);
    const active = installed && str(v, 'unit-dir') === undefined ? systemctl(scope, ['is-active', UNIT_NAME]).output || 'unknown' : null;
    const health = await ctx.client.health().then((h) => `answers at ${ctx.conn.url} (version ${h.version}, up ${h.uptimeSeconds} s)`, () => `does not answer at ${ctx.conn.url}`);
    if (ctx.json) {
      ctx.out(`${JSON.stringify({ scope, unit: file, installed, active, daemon: health })}\n`);
    } else {
      ctx.out(`unit:    ${file} (${installed ? 'installed' : 'not installed'}, ${scope})\n`);
      if (active !== null) ctx.out(`systemd: ${active}\n`);
      ctx.out(`daemon:  ${health}\n`);
    }
    return installed ? EXIT.OK : EXIT.ERROR;
  },
};

export const serviceUninstall: Command = {
  name: 'service uninstall',
  synopsis: ['service uninstall [--user | --system]'],
  summary: 'Stop and disable the service and remove its unit (running VMs keep running)',
  help: SCOPE_HELP,
  options: SCOPE_OPTIONS,
  args: [0, 0],
  async run(ctx, v) {
    const scope = scopeOf(v);
    const custom = str(v, 'unit-dir');
    const file = join(custom ?? unitDir(scope), UNIT_NAME);
    if (!existsSync(file)) throw new UsageError(`no ${UNIT_NAME} in ${custom ?? unitDir(scope)} (is it a ${scope === 'user' ? 'system' : 'user'} service?)`);
    if (!readFileSync(file, 'utf8').startsWith('# Written by `grove service install`')) {
      throw new UsageError(`${file} was not written by grove service install; remove it yourself`);
    }
    if (custom === undefined) {
      const r = systemctl(scope, ['disable', '--now', UNIT_NAME]);
      if (r.code !== 0) ctx.err(`grove: systemctl disable --now failed (exit ${r.code}); removing the unit anyway${r.output ? `:\n${r.output}` : ''}\n`);
    }
    rmSync(file);
    if (custom === undefined) systemctl(scope, ['daemon-reload']);
    ctx.out(`Removed ${file}\n`);
    return EXIT.OK;
  },
};
