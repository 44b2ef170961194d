import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { CloudInitConfig, SeedFacts } from '../../domain/cloud-init.js';
import { DomainError } from '../../domain/errors.js';
import { KEYS_ONLY_DROP_IN, USER_PART_MERGE_TYPE, assertNoConflicts, parseUserData, renderGroveConfig, renderMetaData, renderUserData } from './cloud-config.js';
import { multipartMixed } from './mime.js';
import { readMultipart } from '../../../test/helpers/multipart.js';

const GROVE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGrove grove@host';
const SEED: SeedFacts = { instanceId: '6f1c1f3e-8c52-4b8a-9d1e-3c1f9a0b2c4d', hostname: 'web1' };
const config = (over: Partial<CloudInitConfig> = {}): CloudInitConfig => ({
  user: 'grove', passwordHash: null, sshAuthorizedKeys: [], hostname: null, packages: [], timezone: null, userData: null, ...over,
});

/** The YAML of a `#cloud-config` document, parsed as cloud-init's PyYAML would (YAML 1.1). */
function cloudConfig(text: string): Record<string, any> {
  assert.ok(text.startsWith('#cloud-config\n'), `header: ${text.slice(0, 40)}`);
  return parse(text, { version: '1.1' });
}

test('Grove\'s part: the user with sudo, bash and both keys; hostname; the agent installed and started; no upgrade', () => {
  const doc = cloudConfig(renderGroveConfig(config({ sshAuthorizedKeys: ['ssh-rsa AAAAB3 me@laptop'], packages: ['htop'], timezone: 'Europe/Paris' }), SEED, GROVE_KEY));
  assert.deepEqual(doc.users, [{
    name: 'grove', gecos: 'Grove user', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', lock_passwd: true,
    ssh_authorized_keys: [GROVE_KEY, 'ssh-rsa AAAAB3 me@laptop'],
  }]);
  assert.deepEqual([doc.hostname, doc.fqdn, doc.manage_etc_hosts, doc.timezone], ['web1', 'web1', true, 'Europe/Paris']);
  assert.equal('ssh_pwauth' in doc, false, 'keys only by a drop-in written before sshd starts, not by a late sshd restart');
  assert.deepEqual(doc.write_files, [{
    path: '/etc/ssh/sshd_config.d/10-grove-keys-only.conf', permissions: '0644',
    content: '# Written by Grove on first boot: SSH logins with keys only (ssh_pwauth in the VM\'s userData overrides it).\nPasswordAuthentication no\n',
  }]);
  assert.deepEqual(doc.packages, ['qemu-guest-agent', 'htop']);
  assert.equal(doc.runcmd.length, 1);
  assert.deepEqual(doc.runcmd[0].slice(0, 2), ['sh', '-c']);
  assert.match(doc.runcmd[0][2], /^systemctl enable --now qemu-guest-agent \|\|/);
  assert.equal('package_upgrade' in doc, false);
  assert.equal('package_update' in doc, false);
});

test('a password is set as its hash and unlocks the account; a dotted hostname is hostname + fqdn', () => {
  const hash = '$6$abcdefgh12345678$fkkgMN3.3Z7Icx6K4PtgfPn/3BcYFoC9gROsfNs8zLzg/z0iu6TgDOcuab5ubwJlAwMbvfmXQcwLUHmGmFM/3.';
  const doc = cloudConfig(renderGroveConfig(config({ user: 'ops', passwordHash: hash, packages: ['qemu-guest-agent'] }), { ...SEED, hostname: 'db.example.org' }, GROVE_KEY));
  assert.equal(doc.users[0].name, 'ops');
  assert.equal(doc.users[0].passwd, hash);
  assert.equal(doc.users[0].lock_passwd, false);
  assert.deepEqual(doc.write_files, [KEYS_ONLY_DROP_IN], 'SSH stays key-only');
  assert.deepEqual([doc.hostname, doc.fqdn], ['db', 'db.example.org']);
  assert.deepEqual(doc.packages, ['qemu-guest-agent'], 'named once');
});

test('hostile values stay data: YAML structure in a key or a package cannot add settings', () => {
  const hostile = ['a: b\n- x', 'x"\nruncmd: [reboot]\n#', 'yes', '~', '{a: 1}', '&anchor *alias', 'null', "'single'", 'tab\there', '\u2028line'];
  const keys = hostile.map((h) => `ssh-ed25519 AAAA ${h}`);
  const text = renderGroveConfig(config({ sshAuthorizedKeys: keys, packages: ['yes', 'no', 'on'] }), SEED, GROVE_KEY);
  const doc = cloudConfig(text);
  assert.deepEqual(doc.users[0].ssh_authorized_keys, [GROVE_KEY, ...keys], 'every key comes back exactly, as one string');
  assert.deepEqual(doc.packages, ['qemu-guest-agent', 'yes', 'no', 'on'], 'YAML 1.1 booleans stay strings');
  assert.deepEqual(Object.keys(doc).sort(), ['fqdn', 'hostname', 'manage_etc_hosts', 'packages', 'runcmd', 'users', 'write_files']);
  assert.equal(doc.runcmd.length, 1);
  for (const line of text.split('\n').slice(1)) assert.ok(!/^\S/.test(line) || /^[a-z_]+:/.test(line), `only Grove's keys start a line: ${JSON.stringify(line)}`);
});

test('meta-data: the instance id and the hostname, quoted', () => {
  assert.deepEqual(parse(renderMetaData(SEED), { version: '1.1' }), { 'instance-id': SEED.instanceId, 'local-hostname': 'web1' });
  assert.equal(renderMetaData(SEED), `instance-id: "${SEED.instanceId}"\nlocal-hostname: "web1"\n`);
});

test('without userData the user-data is Grove\'s cloud-config alone', () => {
  const c = config();
  assert.equal(renderUserData(c, SEED, GROVE_KEY), renderGroveConfig(c, SEED, GROVE_KEY));
});

test('with userData: a multipart of two cloud-configs, the caller\'s merged after Grove\'s and kept byte for byte', () => {
  const userData = '#cloud-config\nruncmd:\n  - [touch, /tmp/mine]\nwrite_files:\n  - path: /etc/motd\n    content: "héllo ✓"\nssh_pwauth: true\n';
  const text = renderUserData(config({ userData }), SEED, GROVE_KEY);
  assert.match(text.slice(0, 200), /^Content-Type: multipart\/mixed; boundary="grove-[0-9a-f]{40}"\nMIME-Version: 1\.0\n\n/);
  const parts = readMultipart(text);
  assert.equal(parts.length, 2);
  assert.match(parts[0]!.headers['Content-Type']!, /^text\/cloud-config/);
  assert.equal(parts[0]!.headers['Merge-Type'], undefined);
  assert.match(parts[1]!.headers['Content-Type']!, /^text\/cloud-config/);
  assert.equal(parts[1]!.headers['Merge-Type'], USER_PART_MERGE_TYPE);
  assert.equal(USER_PART_MERGE_TYPE, 'list(append)+dict(recurse_array,no_replace)+str()');
  assert.equal(parts[1]!.headers['Content-Transfer-Encoding'], 'base64', 'not ASCII: base64, as cloud-init reads 8-bit parts as Latin-1');
  assert.equal(parts[1]!.body, userData);
  const grove = cloudConfig(parts[0]!.body);
  assert.equal('ssh_pwauth' in grove, false, 'a setting the caller makes is left to the caller');
  assert.equal('write_files' in grove, false, 'the caller\'s ssh_pwauth decides alone: no keys-only drop-in to win over it');
  assert.equal(grove.hostname, 'web1');
  assert.deepEqual(grove.packages, ['qemu-guest-agent']);
});

test('a caller\'s own write_files come after Grove\'s keys-only drop-in, which stays while the caller leaves ssh_pwauth alone', () => {
  const userData = '#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: hi\n';
  const [grove, mine] = readMultipart(renderUserData(config({ userData }), SEED, GROVE_KEY));
  assert.deepEqual(cloudConfig(grove!.body).write_files, [KEYS_ONLY_DROP_IN]);
  assert.deepEqual(cloudConfig(mine!.body).write_files, [{ path: '/etc/motd', content: 'hi' }]);
  assert.equal(mine!.headers['Merge-Type'], USER_PART_MERGE_TYPE, 'list(append): the caller\'s files are written after Grove\'s');
});

test('the caller setting hostname or fqdn takes both from Grove\'s part; the same setting twice is refused', () => {
  const userData = '#cloud-config\nfqdn: box.lan\n';
  const [grove] = readMultipart(renderUserData(config({ userData }), SEED, GROVE_KEY));
  const doc = cloudConfig(grove!.body);
  assert.equal('hostname' in doc || 'fqdn' in doc, false);
  assert.throws(() => assertNoConflicts(config({ userData, hostname: 'other' })), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED' && /fqdn/.test(e.message));
  assert.throws(() => assertNoConflicts(config({ userData: '#cloud-config\ntimezone: UTC\n', timezone: 'Europe/Paris' })), /timezone/);
  assert.doesNotThrow(() => assertNoConflicts(config({ userData: '#cloud-config\ntimezone: UTC\n', hostname: 'h' })));
});

test('userData must be a #cloud-config YAML mapping', () => {
  const bad = (text: string, why: RegExp) => assert.throws(() => parseUserData(text), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED' && why.test(e.message), text);
  bad('#!/bin/sh\necho hi\n', /must start with a '#cloud-config' line/);
  bad('packages: [a]\n', /must start with/);
  bad(' #cloud-config\na: 1\n', /must start with/);
  bad('#cloud-config\n- a\n- b\n', /mapping/);
  bad('#cloud-config\njust a string\n', /mapping/);
  bad('#cloud-config\na: [1, 2\n', /not valid YAML/);
  bad('#cloud-config\na: 1\na: 2\n', /not valid YAML/);
  bad('#cloud-config\na: b\n- x\n', /not valid YAML/);
  assert.deepEqual([...parseUserData('#cloud-config\r\nruncmd: [ls]\r\npackages: [git]\r\n')], ['runcmd', 'packages']);
  assert.deepEqual([...parseUserData('#cloud-config\n')], [], 'an empty config is allowed');
  assert.deepEqual([...parseUserData('#cloud-config  \n# only a comment\n')], []);
});

test('multipart: same parts, same bytes; ASCII parts travel as they are', () => {
  const parts = [{ contentType: 'text/cloud-config', filename: 'a.cfg', body: '#cloud-config\na: 1\n' }];
  const a = multipartMixed(parts);
  assert.equal(multipartMixed(parts), a);
  const [p] = readMultipart(a);
  assert.equal(p!.headers['Content-Transfer-Encoding'], '7bit');
  assert.equal(p!.body, '#cloud-config\na: 1\n');
  assert.notEqual(multipartMixed([{ ...parts[0]!, body: '#cloud-config\na: 2\n' }]).split('\n', 1)[0], a.split('\n', 1)[0], 'the boundary follows the content');
});
