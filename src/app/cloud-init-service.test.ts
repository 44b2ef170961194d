import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { DomainError } from '../domain/errors.js';
import type { Vm, VmNetwork } from '../domain/vm.js';
import type { HostPorts } from '../ports/host-ports.js';
import type { VmRepo } from '../ports/repos.js';
import type { SeedFiles, SeedStore } from '../ports/seed-store.js';
import type { SshIdentity } from '../ports/ssh-identity.js';
import { CloudInitService } from './cloud-init-service.js';

const KEY = 'ssh-ed25519 AAAAC3Nza grove@test';

function setup(others: VmNetwork[] = [], free: number[] = [40001, 40002, 40003, 40004]) {
  const written = new Map<string, SeedFiles>();
  const seeds: SeedStore = { write: async (path, files) => { written.set(path, files); } };
  const keys: SshIdentity = { privateKeyPath: '/d/ssh/id_ed25519', knownHostsPath: '/d/ssh/known_hosts', publicKey: async () => KEY };
  const asked: number[][] = [];
  // Hands out ports in order, skipping excluded ones, as the kernel would hand out unused ones.
  const ports: HostPorts = { pickFree: async (exclude) => { asked.push([...exclude]); const p = free.find((x) => !exclude.has(x)); if (p === undefined) throw new Error('none'); return p; } };
  const vms = { list: () => others.map((network, i) => ({ id: `vm${i}`, network }) as unknown as Vm) } as unknown as VmRepo;
  return { svc: new CloudInitService({ vms, seeds, keys, ports }), written, asked };
}

const user: VmNetwork = { mode: 'user', portForwards: [] };

test('prepare: defaults, the password kept only as a SHA-512 crypt hash, duplicates dropped, root refused', () => {
  const { svc } = setup();
  const c = svc.prepare({ password: 's3cret', sshAuthorizedKeys: ['ssh-rsa AAAAB3 x', ' ssh-rsa AAAAB3 x '], packages: ['git', 'git'] });
  assert.equal(c.user, 'grove');
  assert.match(c.passwordHash!, /^\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/);
  assert.equal(JSON.stringify(c).includes('s3cret'), false);
  assert.deepEqual([c.sshAuthorizedKeys, c.packages, c.hostname, c.timezone, c.userData], [['ssh-rsa AAAAB3 x'], ['git'], null, null, null]);
  assert.throws(() => svc.prepare({ user: 'root' }), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED');
  assert.throws(() => svc.prepare({ userData: '#!/bin/sh\n' }), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED');
});

test('prepare: every authorized key must be a public key line; a private key\'s first line is named as such', () => {
  const { svc } = setup();
  const ok = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnly me@laptop', 'from="10.0.0.0/8",no-pty ecdsa-sha2-nistp256 AAAAE2VjZHNh x',
    'sk-ssh-ed25519@openssh.com AAAAGnNr', 'ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20= ca'];
  assert.deepEqual(svc.prepare({ sshAuthorizedKeys: ok }).sshAuthorizedKeys, ok);
  const refused = (key: string, message: string) => assert.throws(() => svc.prepare({ sshAuthorizedKeys: [ok[0]!, key] }),
    (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED' && e.message === message && e.extra['field'] === 'cloudInit.sshAuthorizedKeys', key);
  const shape = "is not an authorized_keys line (expected '[options] <type> <base64 key> [comment]', e.g. 'ssh-ed25519 AAAAC3Nza… me@laptop')";
  refused('-----BEGIN OPENSSH PRIVATE KEY-----', `cloudInit.sshAuthorizedKeys[1] ${shape}: it is the first line of a private key; give the public key (the .pub file)`);
  refused('my laptop key', `cloudInit.sshAuthorizedKeys[1] ${shape}`);
  refused('ssh-ed25519', `cloudInit.sshAuthorizedKeys[1] ${shape}`);
  refused('ssh-ed25519 not-base64!', `cloudInit.sshAuthorizedKeys[1] ${shape}`);
});

test('provision: seed.iso with meta-data and user-data for this instance; a free port forwarded to 22', async () => {
  const { svc, written, asked } = setup([{ mode: 'user', portForwards: [{ host: 40001, guest: 80, protocol: 'tcp' }] }]);
  const p = await svc.provision('/d/vms/x', { id: 'id-1', name: 'Web_1' }, svc.prepare({}), { mode: 'user', portForwards: [{ host: 40002, guest: 8080, protocol: 'tcp' }] });
  const files = written.get('/d/vms/x/seed.iso')!;
  assert.deepEqual(parse(files['meta-data']!), { 'instance-id': 'id-1', 'local-hostname': 'web-1' });
  assert.deepEqual(parse(files['user-data']!).users[0].ssh_authorized_keys, [KEY]);
  assert.deepEqual(p.network.portForwards, [{ host: 40002, guest: 8080, protocol: 'tcp' }, { host: 40003, guest: 22, protocol: 'tcp' }]);
  assert.deepEqual(asked[0]!.sort(), [40001, 40002], 'ports of other VMs and of this one are not offered');
  assert.deepEqual(p.summary, {
    user: 'grove', hostname: 'web-1', instanceId: 'id-1', sshAuthorizedKeys: [], packages: [], timezone: null, password: false, userData: false,
  });
  p.release();
});

test('provision: two VMs in flight never get the same port; the reservation ends with release', async () => {
  const { svc } = setup();
  const config = svc.prepare({});
  const a = await svc.provision('/a', { id: 'a', name: 'a' }, config, user);
  const b = await svc.provision('/b', { id: 'b', name: 'b' }, config, user);
  assert.notEqual(a.network.portForwards[0]!.host, b.network.portForwards[0]!.host);
  a.release();
  b.release();
  const c = await svc.provision('/c', { id: 'c', name: 'c' }, config, user);
  assert.equal(c.network.portForwards[0]!.host, 40001, 'released ports may be chosen again');
});

test('provision: no forward added when the caller forwards 22 or the VM has no NIC', async () => {
  const { svc, asked } = setup();
  const config = svc.prepare({});
  const own: VmNetwork = { mode: 'user', portForwards: [{ host: 2222, guest: 22, protocol: 'tcp' }] };
  assert.deepEqual((await svc.provision('/a', { id: 'a', name: 'a' }, config, own)).network, own);
  const none: VmNetwork = { mode: 'none', portForwards: [] };
  assert.deepEqual((await svc.provision('/b', { id: 'b', name: 'b' }, config, none)).network, none);
  const udp: VmNetwork = { mode: 'user', portForwards: [{ host: 2222, guest: 22, protocol: 'udp' }] };
  assert.equal((await svc.provision('/c', { id: 'c', name: 'c' }, config, udp)).network.portForwards.length, 2, 'a UDP forward is not SSH');
  assert.equal(asked.length, 1);
});

test('sshAccess: the forward, the user, Grove\'s files and a per-VM host key alias; 409 without a forward', async () => {
  const { svc } = setup();
  const vm = { id: 'id-9', name: 'w', network: { mode: 'user', portForwards: [{ host: 40100, guest: 22, protocol: 'tcp' }] }, cloudInit: { user: 'ops' } } as unknown as Vm;
  assert.deepEqual(await svc.sshAccess(vm), {
    host: '127.0.0.1', port: 40100, user: 'ops', privateKeyPath: '/d/ssh/id_ed25519', knownHostsPath: '/d/ssh/known_hosts', hostKeyAlias: 'grove-id-9',
  });
  await assert.rejects(svc.sshAccess({ ...vm, network: user }), (e: unknown) => e instanceof DomainError && e.code === 'CONFLICT');
});
