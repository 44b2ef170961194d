import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, parseCommandArgs, sizeGiB, sizeMiB, type Command } from './command.js';
import { resolveConnection } from './connection.js';
import { commandLine } from './commands/console.js';
import { exec } from './commands/agent.js';
import { parsePortForward } from './commands/vm.js';
import { launch, launchBody } from './commands/launch.js';
import { table } from './output.js';

test('sizes: bare numbers in the flag\'s unit, suffixes converted', () => {
  assert.equal(sizeMiB({ memory: '512' }, 'memory'), 512);
  assert.equal(sizeMiB({ memory: '2G' }, 'memory'), 2048);
  assert.equal(sizeMiB({ memory: '768MiB' }, 'memory'), 768);
  assert.equal(sizeGiB({ disk: '10' }, 'disk'), 10);
  assert.equal(sizeGiB({ disk: '2048M' }, 'disk'), 2);
  assert.equal(sizeGiB({ disk: '1T' }, 'disk'), 1024);
  assert.throws(() => sizeGiB({ disk: '1500M' }, 'disk'), UsageError);
  assert.throws(() => sizeMiB({ memory: 'lots' }, 'memory'), UsageError);
});

test('port forwards: HOST:GUEST[/tcp|/udp]', () => {
  assert.deepEqual(parsePortForward('2222:22'), { host: 2222, guest: 22, protocol: 'tcp' });
  assert.deepEqual(parsePortForward('5353:53/udp'), { host: 5353, guest: 53, protocol: 'udp' });
  assert.throws(() => parsePortForward('22'), UsageError);
  assert.throws(() => parsePortForward('a:b'), UsageError);
});

test('exec: several words are an argv quoted for the shell, one word is a command line', () => {
  assert.equal(commandLine(['uname', '-a']), 'uname -a');
  assert.equal(commandLine(['sh', '-c', 'exit 7']), "sh -c 'exit 7'");
  assert.equal(commandLine(['echo', "it's", '$HOME']), "echo 'it'\\''s' '$HOME'");
  assert.equal(commandLine(['ls | wc -l']), 'ls | wc -l');
});

test('argument parsing: -- tail, positional counts, unknown flags', () => {
  const r = parseCommandArgs(exec, ['vm1', '--timeout', '5', '--', 'ls', '--color', '-l']);
  assert.deepEqual(r.positionals, ['vm1']);
  assert.deepEqual(r.tail, ['ls', '--color', '-l']);
  assert.equal(r.values['timeout'], '5');
  assert.deepEqual(parseCommandArgs(exec, ['vm1', 'uname']).tail, ['uname']);
  const one: Command = { name: 'x', synopsis: ['x VM'], summary: '', args: [1, 1], run: async () => 0 };
  assert.throws(() => parseCommandArgs(one, []), UsageError);
  assert.throws(() => parseCommandArgs(one, ['a', 'b']), UsageError);
  assert.throws(() => parseCommandArgs(one, ['a', '--nope']), UsageError);
  assert.equal(parseCommandArgs(one, ['a', '--json', '--url', 'http://h:1']).values['url'], 'http://h:1');
});

test('connection: flags over GROVE_* over NEMETON_* over the local data dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grove-conn-'));
  try {
    mkdirSync(join(dir, 'grove'));
    writeFileSync(join(dir, 'grove', 'token'), 'file-token\n');
    const base = { XDG_DATA_HOME: dir, HOME: '/nonexistent' };
    assert.deepEqual(pick(resolveConnection({}, base)), ['http://127.0.0.1:22100', 'file-token']);
    assert.deepEqual(pick(resolveConnection({}, { ...base, GROVE_PORT: '23000' })), ['http://127.0.0.1:23000', 'file-token']);
    assert.deepEqual(pick(resolveConnection({}, { ...base, GROVE_PORT: '23000', NEMETON_PORT: '24000', NEMETON_TOKEN: 'nt' })), ['http://127.0.0.1:24000', 'nt']);
    assert.deepEqual(pick(resolveConnection({}, { ...base, NEMETON_PORT: '24000', NEMETON_TOKEN: 'nt', GROVE_URL: 'http://h:1', GROVE_TOKEN: 'gt' })), ['http://h:1', 'gt']);
    assert.deepEqual(pick(resolveConnection({ url: 'http://f:2', token: 'ft' }, { ...base, GROVE_URL: 'http://h:1', GROVE_TOKEN: 'gt' })), ['http://f:2', 'ft']);
    const missing = resolveConnection({ dataDir: join(dir, 'none') }, base);
    assert.equal(missing.token, undefined);
    assert.match(missing.tokenSource, /none\/token \(ENOENT\)$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tables: columns aligned, last column unpadded', () => {
  assert.equal(table(['NAME', 'STATE'], [['a', 'running'], ['long-name', 'x']]), 'NAME       STATE\na          running\nlong-name  x\n');
});

function pick(c: { url: string; token: string | undefined }): [string, string | undefined] {
  return [c.url, c.token];
}

test('launch: flags become the launch body; cloud-init always, with the caller\'s own public keys', () => {
  const home = mkdtempSync(join(tmpdir(), 'grove-cli-home-'));
  const saved = process.env['HOME'];
  try {
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'id_ed25519.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMine me@laptop\n');
    process.env['HOME'] = home;
    const { values, positionals } = parseCommandArgs(launch, ['debian-12', 'web', '--memory', '2G', '--disk', '20', '--cpu', '2', '--hostname', 'web.lan', '--wait-for', 'none', '--timeout', '90']);
    assert.deepEqual(positionals, ['debian-12', 'web']);
    assert.deepEqual(launchBody(values, 'debian-12', 'web'), {
      distro: 'debian-12', name: 'web', cpu: 2, memoryMB: 2048, diskGB: 20, waitFor: 'none', timeoutSeconds: 90,
      cloudInit: { hostname: 'web.lan', sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMine me@laptop'] },
    });
    const bare = parseCommandArgs(launch, ['debian-12']);
    assert.deepEqual(launchBody(bare.values, 'debian-12', undefined).cloudInit, { sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMine me@laptop'] });
    assert.deepEqual(launchBody(parseCommandArgs(launch, ['debian-12', '--wait-for', 'agent']).values, 'debian-12', undefined).waitFor, { until: [{ agent: true }] });
    assert.throws(() => launchBody(parseCommandArgs(launch, ['debian-12', '--wait-for', 'port']).values, 'debian-12', undefined), UsageError);
  } finally {
    if (saved === undefined) delete process.env['HOME']; else process.env['HOME'] = saved;
    rmSync(home, { recursive: true, force: true });
  }
});

test('launch --autostart: the launch body asks for autostart', () => {
  assert.equal(launchBody(parseCommandArgs(launch, ['debian-12', '--autostart']).values, 'debian-12', undefined).autostart, true);
});

test('launch without --autostart: the body leaves it to the daemon\'s default', () => {
  assert.equal('autostart' in launchBody(parseCommandArgs(launch, ['debian-12']).values, 'debian-12', undefined), false);
});
