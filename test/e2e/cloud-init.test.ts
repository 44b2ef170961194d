// cloud-init (NoCloud) end to end: the seed Grove writes is read back with real tools (isoinfo from
// genisoimage) and mounted by a real Linux kernel inside the test guest (the host's kernel may lack
// ISO 9660), QEMU carries it as a read-only disk, and the SSH forward, clone, export/import and the
// CLI (`create` flags, `grove ssh`) behave as documented.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sha512Crypt } from '../../src/util/sha512-crypt.js';
import { assertOk, assertProblem, execute, forceStop, qemuPidsOf, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { guestFiles, REPO_ROOT } from '../helpers/guest.js';
import { readMultipart } from '../helpers/multipart.js';
import { runCommand } from '../helpers/run.js';

let d: TestDaemon;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.cleanup(); });

const USER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnlyForTests me@laptop';
const USER_DATA = '#cloud-config\nruncmd:\n  - [touch, /tmp/from-user-data]\nwrite_files:\n  - path: /etc/motd\n    content: "grüß dich"\n';

const seedPath = (id: string) => join(d.dataDir, 'vms', id, 'seed.iso');
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function isoinfo(args: string[]): Promise<string> {
  const r = await runCommand('isoinfo', args);
  assert.equal(r.code, 0, `isoinfo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The seed read back by genisoimage's isoinfo: its label, its Joliet listing and both files. */
async function readSeed(id: string): Promise<{ label: string; names: string[]; metaData: string; userData: string }> {
  const iso = seedPath(id);
  const info = await isoinfo(['-d', '-i', iso]);
  assert.match(info, /Joliet with UCS level 3 found/);
  const names = [...(await isoinfo(['-J', '-l', '-i', iso])).matchAll(/\s(\S+)\s*$/gm)].map((m) => m[1]!).filter((n) => /^[a-z-]+$/.test(n));
  return {
    label: /^Volume id: (.*)$/m.exec(info)![1]!,
    names,
    metaData: await isoinfo(['-J', '-x', '/meta-data', '-i', iso]),
    userData: await isoinfo(['-J', '-x', '/user-data', '-i', iso]),
  };
}

const groveKey = () => readFileSync(join(d.dataDir, 'ssh', 'id_ed25519.pub'), 'utf8').trim();
const sshForward = (vm: any) => vm.network.portForwards.find((f: any) => f.guest === 22 && f.protocol === 'tcp');

let first: any;

test('create with cloudInit: 201, the seed holds meta-data and Grove\'s + the caller\'s cloud-config, no password shown', async () => {
  first = await createGuestVm(d, 'ci-a', {
    cloudInit: {
      user: 'ops', password: 'correct horse', sshAuthorizedKeys: [USER_KEY], hostname: 'alpha.example.org', packages: ['htop'], timezone: 'UTC', userData: USER_DATA,
    },
  });
  assert.deepEqual(first.cloudInit, {
    user: 'ops', hostname: 'alpha.example.org', instanceId: first.id, sshAuthorizedKeys: [USER_KEY], packages: ['htop'], timezone: 'UTC', password: true, userData: true,
  });
  const listed = assertOk(await d.call('GET', '/vms'), 200, 'list');
  assert.equal(JSON.stringify(listed).includes('correct horse') || JSON.stringify(listed).includes('$6$'), false, 'neither the password nor its hash is shown');

  // Grove's key pair, made on first use, private to the daemon's user.
  assert.equal(statSync(join(d.dataDir, 'ssh', 'id_ed25519')).mode & 0o777, 0o600);
  assert.equal(statSync(join(d.dataDir, 'ssh', 'id_ed25519.pub')).mode & 0o777, 0o644);
  assert.match(groveKey(), /^ssh-ed25519 \S+ grove@/);

  const seed = await readSeed(first.id);
  assert.equal(seed.label, 'cidata');
  assert.deepEqual(seed.names.sort(), ['meta-data', 'user-data']);
  assert.equal(seed.metaData, `instance-id: "${first.id}"\nlocal-hostname: "alpha.example.org"\n`);
  const [grovePart, userPart] = readMultipart(seed.userData);
  assert.equal(userPart!.headers['Merge-Type'], 'list(append)+dict(recurse_array,no_replace)+str()');
  assert.equal(userPart!.body, USER_DATA, 'the caller\'s cloud-config byte for byte');
  const cfg = parse(grovePart!.body, { version: '1.1' });
  const u = cfg.users[0];
  assert.deepEqual([u.name, u.sudo, u.shell, u.lock_passwd], ['ops', 'ALL=(ALL) NOPASSWD:ALL', '/bin/bash', false]);
  assert.deepEqual(u.ssh_authorized_keys, [groveKey(), USER_KEY]);
  const salt = /^\$6\$([^$]+)\$/.exec(u.passwd)![1]!;
  assert.equal(u.passwd, sha512Crypt('correct horse', salt), 'the password is in the seed only as its crypt hash');
  assert.deepEqual([cfg.hostname, cfg.fqdn, cfg.timezone], ['alpha', 'alpha.example.org', 'UTC']);
  assert.equal('ssh_pwauth' in cfg, false);
  assert.deepEqual(cfg.write_files.map((f: any) => [f.path, f.content.split('\n').at(-2)]), [['/etc/ssh/sshd_config.d/10-grove-keys-only.conf', 'PasswordAuthentication no']], 'keys only over SSH');
  assert.deepEqual(cfg.packages, ['qemu-guest-agent', 'htop']);
  assert.ok(!('package_upgrade' in cfg));

  const fwd = sshForward(first);
  assert.ok(fwd && fwd.host >= 1024, `an SSH forward was chosen: ${JSON.stringify(first.network)}`);
});

test('the guest boots with the seed as a read-only disk, mounts it and reads the same bytes', async () => {
  await startReady(d, 'ci-a', { acpi: false });
  const [pid] = qemuPidsOf(first.id);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.ok(argv.includes(`driver=file,filename=${seedPath(first.id)},node-name=seed0-file,read-only=on`), argv.join(' '));
  assert.ok(argv.includes('virtio-blk-pci,drive=seed0,id=seed0-dev'), argv.join(' '));

  const expected = await readSeed(first.id);
  const r = await execute(d, 'ci-a', [
    'i=0; while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done',
    'cat /sys/block/vdb/ro',
    'mkdir -p /mnt/seed && mount -t iso9660 -o ro /dev/vdb /mnt/seed && ls -1 /mnt/seed',
    'sha256sum /mnt/seed/user-data /mnt/seed/meta-data | cut -d" " -f1',
    'umount /mnt/seed',
  ].join('; '), { timeoutSeconds: 30 });
  assert.equal(r.output, `1\nmeta-data\nuser-data\n${sha256(expected.userData)}\n${sha256(expected.metaData)}\n`);
  // The root disk is still the first virtio disk.
  assert.equal((await execute(d, 'ci-a', 'grep -c "^/dev/vda /mnt/disk " /proc/mounts')).output, '1\n');

  // Live snapshots need every writable disk to take one: the read-only seed is left out, not in the way.
  assertOk(await d.call('POST', '/vms/ci-a/snapshots', { name: 'with-seed' }), 201, 'live snapshot');
});

test('GET /vms/:id/ssh names the forward, the user and Grove\'s files; grove ssh passes ssh\'s exit code through', async () => {
  const access = assertOk(await d.call('GET', '/vms/ci-a/ssh'), 200, 'ssh access');
  assert.deepEqual(access, {
    host: '127.0.0.1', port: sshForward(first).host, user: 'ops', privateKeyPath: join(d.dataDir, 'ssh', 'id_ed25519'),
    knownHostsPath: join(d.dataDir, 'ssh', 'known_hosts'), hostKeyAlias: `grove-${first.id}`,
  });
  // The busybox guest runs no SSH server: QEMU accepts on the host port and the guest resets it, so the
  // OpenSSH client itself fails, with its own exit code 255, which grove ssh returns unchanged.
  const r = await grove(['ssh', 'ci-a', '--', 'true']);
  assert.equal(r.code, 255, `grove ssh exit code: ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, /kex_exchange_identification|Connection (reset|closed)/);
  await forceStop(d, 'ci-a');
  const stopped = await grove(['ssh', 'ci-a']);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /is stopped; start it first/);

  const plain = await createGuestVm(d, 'ci-plain');
  assert.equal(plain.cloudInit, null);
  assert.deepEqual(plain.network.portForwards, [], 'no cloud-init: no automatic forward');
  assertProblem(await d.call('GET', '/vms/ci-plain/ssh'), 409, 'CONFLICT');
  assert.equal(existsSync(seedPath(plain.id)), false);
});

test('SSH forwards: unique across VMs; the caller\'s forward to 22 is kept; none without a NIC', async () => {
  const b = await createGuestVm(d, 'ci-b', { cloudInit: {} });
  const c = await createGuestVm(d, 'ci-c', { cloudInit: {} });
  const ports = [first, b, c].map((v) => sshForward(v).host);
  assert.equal(new Set(ports).size, 3, `three different ports: ${ports.join(', ')}`);
  assert.equal(b.cloudInit.user, 'grove');
  assert.equal(b.cloudInit.hostname, 'ci-b');

  const own = await createGuestVm(d, 'ci-own', { cloudInit: {}, network: { portForwards: [{ host: 42222, guest: 22 }, { host: 48080, guest: 80 }] } });
  assert.deepEqual(own.network.portForwards, [{ host: 42222, guest: 22, protocol: 'tcp' }, { host: 48080, guest: 80, protocol: 'tcp' }]);
  const none = await createGuestVm(d, 'ci-none', { cloudInit: {}, network: { mode: 'none' } });
  assert.deepEqual(none.network, { mode: 'none', portForwards: [] });

  const ls = await grove(['ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`ci-b .*${sshForward(b).host}→22`));
});

test('a host without OpenSSH\'s tools: the daemon still makes its key pair, one OpenSSH reads', async () => {
  // A PATH holding QEMU and nothing else: no ssh-keygen for the daemon to find.
  const bin = mkdtempSync(join(tmpdir(), 'grove-no-ssh-'));
  for (const tool of ['qemu-system-x86_64', 'qemu-img']) {
    const r = await runCommand('sh', ['-c', `command -v ${tool}`]);
    symlinkSync(r.stdout.trim(), join(bin, tool));
  }
  const bare = await startDaemon({ env: { PATH: bin } });
  try {
    const vm = await createGuestVm(bare, 'ci-no-ssh', { cloudInit: {} });
    const key = join(bare.dataDir, 'ssh', 'id_ed25519');
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const pub = readFileSync(`${key}.pub`, 'utf8');
    assert.match(pub, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} grove@\S+\n$/);
    // OpenSSH derives the same public key from the private key file: the pair is whole and in its format.
    const derived = await runCommand('ssh-keygen', ['-y', '-f', key]);
    assert.equal(derived.code, 0, derived.stderr);
    assert.equal(derived.stdout.trim().split(' ').slice(0, 2).join(' '), pub.trim().split(' ').slice(0, 2).join(' '));
    const userData = parse(await isoinfo(['-J', '-x', '/user-data', '-i', join(bare.dataDir, 'vms', vm.id, 'seed.iso')]), { version: '1.1' });
    assert.deepEqual(userData.users[0].ssh_authorized_keys, [pub.trim()], 'the seed carries that key');
  } finally {
    await bare.cleanup();
    rmSync(bin, { recursive: true, force: true });
  }
});

test('bad cloudInit is a 400 and leaves nothing behind', async () => {
  const bad = async (cloudInit: unknown, what: string) => {
    const r = await d.call('POST', '/vms', { name: 'ci-bad', kernel: 'vmlinuz', initrd: 'initramfs.gz', cloudInit });
    assertProblem(r, 400, 'VALIDATION_FAILED', what);
    return r.body.detail as string;
  };
  assert.match(await bad({ users: ['x'] }, 'unknown field'), /cloudInit\/users/);
  assert.match(await bad({ userData: '#!/bin/sh\necho hi' }, 'not cloud-config'), /#cloud-config/);
  assert.match(await bad({ userData: '#cloud-config\n- a\n' }, 'not a mapping'), /mapping/);
  assert.match(await bad({ userData: '#cloud-config\na: [1\n' }, 'not YAML'), /not valid YAML/);
  assert.match(await bad({ hostname: 'h', userData: '#cloud-config\nhostname: x\n' }, 'set twice'), /hostname/);
  await bad({ user: 'root' }, 'root');
  await bad({ user: 'Bad User' }, 'bad user');
  await bad({ sshAuthorizedKeys: ['ssh-ed25519 AAAA\nssh-rsa injected'] }, 'newline in a key');
  assert.match(await bad({ sshAuthorizedKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }, 'a private key'), /sshAuthorizedKeys\[0\] is not an authorized_keys line .*private key/);
  await bad({ packages: ['git; reboot'] }, 'bad package');
  await bad({ hostname: 'under_score' }, 'bad hostname');
  await bad({ timezone: '../../etc/passwd' }, 'bad timezone');
  await bad({ userData: `#cloud-config\na: "${'x'.repeat(70_000)}"\n` }, 'too long');
  assert.equal((await d.call('GET', '/vms/ci-bad')).status, 404);
});

test('a clone is a new instance: its own seed (instance-id, hostname from its name) and SSH port', async () => {
  const src = await createGuestVm(d, 'ci-src', { cloudInit: { packages: ['git'] } });
  const c = assertOk(await d.call('POST', '/vms/ci-src/clone', { name: 'ci-src-copy' }), 201, 'clone');
  assert.deepEqual({ ...c.cloudInit }, { ...src.cloudInit, instanceId: c.id, hostname: 'ci-src-copy' });
  const seed = await readSeed(c.id);
  assert.equal(seed.metaData, `instance-id: "${c.id}"\nlocal-hostname: "ci-src-copy"\n`);
  assert.deepEqual(parse(seed.userData).packages, ['qemu-guest-agent', 'git']);
  assert.notEqual(sshForward(c).host, sshForward(src).host);
  await startReady(d, 'ci-src-copy', { acpi: false });
  await forceStop(d, 'ci-src-copy');
});

test('export carries the cloud-init config; the import gets its own seed from it', async () => {
  const r = assertOk(await d.call('POST', '/vms/ci-a/export', { path: 'ci-a.grove.tar' }), 201, 'export');
  assert.ok(r.bytes > 0);
  const imp = assertOk(await d.call('POST', '/vms/import', { path: 'ci-a.grove.tar', name: 'ci-a-imported' }), 201, 'import');
  assert.deepEqual(imp.cloudInit, { ...first.cloudInit, instanceId: imp.id });
  assert.notEqual(sshForward(imp).host, sshForward(first).host, 'the SSH port the bundle names is taken here (by ci-a): a free one was chosen');
  assert.equal(imp.network.portForwards.length, 1);
  const [a, b] = await Promise.all([readSeed(first.id), readSeed(imp.id)]);
  assert.equal(b.metaData, `instance-id: "${imp.id}"\nlocal-hostname: "alpha.example.org"\n`);
  const pa = readMultipart(a.userData);
  const pb = readMultipart(b.userData);
  assert.equal(pb[1]!.body, USER_DATA);
  assert.equal(parse(pb[0]!.body).users[0].passwd, parse(pa[0]!.body).users[0].passwd, 'the password hash travelled (never the password)');
  const manifestHasPassword = readFileSync(join(d.dataDir, 'transfer', 'ci-a.grove.tar')).includes('correct horse');
  assert.equal(manifestHasPassword, false);
});

test('grove create: cloud-init flags, and the caller\'s ~/.ssh/id_*.pub keys added', async () => {
  const home = join(d.dataDir, 'transfer', 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'id_ed25519.pub'), `${USER_KEY}\n`);
  writeFileSync(join(home, 'ud.yaml'), USER_DATA);
  const g = guestFiles();
  const r = await grove(['create', 'ci-cli', '--kernel', 'vmlinuz', '--initrd', 'initramfs.gz', '--cmdline', g.cmdline, '--memory', '256',
    '--hostname', 'cli-box', '--package', 'git', '--user-data', join(home, 'ud.yaml'), '--json'], { HOME: home });
  assert.equal(r.code, 0, r.stderr);
  const vm = JSON.parse(r.stdout);
  assert.deepEqual([vm.cloudInit.hostname, vm.cloudInit.sshAuthorizedKeys, vm.cloudInit.packages, vm.cloudInit.userData], ['cli-box', [USER_KEY], ['git'], true]);
  const human = await grove(['show', 'ci-cli'], { HOME: home });
  assert.match(human.stdout, new RegExp(`SSH: +grove ssh ci-cli  \\(127\\.0\\.0\\.1:${sshForward(vm).host}, user grove\\)`));
});

function grove(args: string[], env: Record<string, string> = {}) {
  return runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), ...args], {
    env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token, ...env }, input: '', timeoutMs: 60_000,
  });
}
