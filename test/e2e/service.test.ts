/**
 * `grove service install|status|uninstall` end to end, without touching the host's systemd: the unit is
 * written to a folder of the test's own (--unit-dir), checked by systemd's own `systemd-analyze verify`,
 * and its ExecStart line is run as systemd would run it, starting a real daemon that answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { DAEMON_NODE_FLAGS } from '../../src/cli/service-unit.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');
let d: TestDaemon;
let scratch: string;

before(async () => {
  d = await startDaemon();
  scratch = mkdtempSync(join(tmpdir(), 'grove-service-e2e-'));
});
after(async () => {
  await d?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function grove(args: string[]): Promise<RunResult> {
  return runCommand(process.execPath, [GROVE, ...args], { env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token }, input: '' });
}

/** systemd's verdict on a unit file: exit 0 and nothing printed (it warns on stderr yet exits 0 for bad values). */
async function verify(file: string, scope: 'system' | 'user'): Promise<void> {
  const run = join(scratch, 'run');
  mkdirSync(run, { recursive: true, mode: 0o700 });
  const r = await runCommand('systemd-analyze', [...(scope === 'user' ? ['--user'] : []), 'verify', file], { env: { ...process.env, XDG_RUNTIME_DIR: run } });
  assert.equal(`${r.code} ${r.stdout}${r.stderr}`, '0 ', `systemd-analyze verify ${file}`);
}

test('a system unit: verified by systemd, KillMode=process, restart on failure; its ExecStart starts a daemon that answers', async () => {
  const dir = join(scratch, 'system');
  const data = join(scratch, 'data');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const r = await grove(['service', 'install', '--system', '--unit-dir', dir, '--data-dir', data, '--port', String(port)]);
  assert.equal(r.code, 0, r.stderr);
  const file = join(dir, 'grove.service');
  assert.equal(r.stdout, `Wrote ${file}\n`);
  const unit = readFileSync(file, 'utf8');
  await verify(file, 'system');
  for (const line of ['KillMode=process', 'Restart=on-failure', 'UMask=0077', 'NoNewPrivileges=yes', 'ProtectSystem=full', 'WantedBy=multi-user.target']) {
    assert.ok(unit.split('\n').includes(line), line);
  }
  assert.ok(!unit.includes('MemoryDenyWriteExecute'), 'TCG and V8 generate code');
  assert.ok(!unit.includes('StateDirectory='), 'a data dir of its own: systemd does not make /var/lib/grove');
  const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(' ');
  assert.deepEqual(exec, [process.execPath, ...DAEMON_NODE_FLAGS, GROVE, 'serve', '--data-dir', data, '--port', String(port)]);

  const daemon = spawn(exec[0]!, exec.slice(1), { stdio: 'ignore', env: { ...process.env, GROVE_ACCEL: 'tcg' } });
  try {
    const health = await waitFor('the unit\'s daemon', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`).catch(() => null);
      return res?.status === 200 ? res.json() : null;
    }, 60_000);
    assert.equal((health as { status: string }).status, 'ok');
    assert.ok(existsSync(join(data, 'grove.db')), 'it uses the unit\'s data dir');
  } finally {
    daemon.kill('SIGTERM');
  }
});

test('a user unit: verified by systemd; status says installed and that the daemon answers; uninstall removes it', async () => {
  const dir = join(scratch, 'user');
  assert.equal((await grove(['service', 'install', '--user', '--unit-dir', dir])).code, 0);
  const file = join(dir, 'grove.service');
  await verify(file, 'user');
  const unit = readFileSync(file, 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=\\S+ ${DAEMON_NODE_FLAGS.join(' ')} \\S+/bin/grove serve$`, 'm'), 'a user service uses the user\'s own data dir');
  assert.ok(unit.split('\n').includes('WantedBy=default.target'));
  assert.ok(!unit.includes('ProtectSystem'), 'no system-only sandboxing in a user unit');

  const status = await grove(['service', 'status', '--user', '--unit-dir', dir, '--json']);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.deepEqual([s.scope, s.unit, s.installed, s.active], ['user', file, true, null]);
  assert.match(s.daemon, /^answers at http:\/\/127\.0\.0\.1:\d+ \(version \d+\.\d+\.\d+, up \d+ s\)$/);

  const rm = await grove(['service', 'uninstall', '--user', '--unit-dir', dir]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(existsSync(file), false);
  const again = await grove(['service', 'status', '--user', '--unit-dir', dir]);
  assert.equal(again.code, 1);
  assert.match(again.stdout, /\(not installed, user\)/);
  const twice = await grove(['service', 'uninstall', '--user', '--unit-dir', dir]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /no grove\.service in /);
});

test('usage errors: both scopes, a bad port, --data-dir on a user unit; --print prints the unit', async () => {
  const both = await grove(['service', 'install', '--user', '--system', '--print']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give --user or --system, not both/);
  assert.equal((await grove(['service', 'install', '--port', 'x', '--print'])).code, 2);
  const dd = await grove(['service', 'install', '--user', '--data-dir', '/tmp/x', '--print']);
  assert.equal(dd.code, 2);
  assert.match(dd.stderr, /--data-dir is for --system/);
  const printed = await grove(['service', 'install', '--system', '--print']);
  assert.equal(printed.code, 0);
  assert.match(printed.stdout, /^# Written by `grove service install`/);
  assert.match(printed.stdout, new RegExp(`^ExecStart=\\S+ ${DAEMON_NODE_FLAGS.join(' ')} \\S+/bin/grove serve --data-dir /var/lib/grove$`, 'm'));
  assert.match(printed.stdout, /^StateDirectory=grove$/m);
});
