import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sshArgv } from './commands/ssh.js';
import { cloudInitFlags } from './commands/vm.js';
import { localPublicKeys } from './ssh-keys.js';

const access = { host: '127.0.0.1', port: 40022, user: 'grove', privateKeyPath: '/d/ssh/id_ed25519', knownHostsPath: '/d 1/ssh/known_hosts%', hostKeyAlias: 'grove-abc' };

test('ssh argv: Grove\'s key only, its known_hosts (quoted, % escaped), the per-VM alias, the command after --', () => {
  assert.deepEqual(sshArgv(access, 'ops', ['ls', '-l']), [
    '-i', '/d/ssh/id_ed25519', '-p', '40022', '-l', 'ops', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=accept-new',
    '-o', 'UserKnownHostsFile="/d 1/ssh/known_hosts%%"', '-o', 'HostKeyAlias=grove-abc', '127.0.0.1', '--', 'ls', '-l',
  ]);
  assert.equal(sshArgv(access, 'grove', []).at(-1), '127.0.0.1', 'no command: an interactive login');
});

test('the caller\'s ~/.ssh/id_*.pub keys; create flags turn cloud-init on', () => {
  const home = mkdtempSync(join(tmpdir(), 'grove-home-'));
  try {
    assert.deepEqual(localPublicKeys(home), [], 'no ~/.ssh: no keys');
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'id_ed25519.pub'), 'ssh-ed25519 AAAAed me@here\n');
    writeFileSync(join(home, '.ssh', 'id_rsa.pub'), 'ssh-rsa AAAArsa me@here\n');
    writeFileSync(join(home, '.ssh', 'id_rsa'), 'PRIVATE');
    writeFileSync(join(home, '.ssh', 'other.pub'), 'ssh-rsa AAAAother');
    writeFileSync(join(home, '.ssh', 'id_bad.pub'), 'ssh-rsa A\u0085B');
    // Not a key line: the daemon would refuse the whole create for a file the user did not name.
    writeFileSync(join(home, '.ssh', 'id_junk.pub'), 'my old key, lost\n');
    assert.deepEqual(localPublicKeys(home), ['ssh-ed25519 AAAAed me@here', 'ssh-rsa AAAArsa me@here']);

    assert.equal(cloudInitFlags({}, home), undefined, 'no cloud-init flag: none');
    const extra = join(home, 'extra.pub');
    writeFileSync(extra, 'ssh-ed25519 AAAAextra x\n');
    const ud = join(home, 'ud.yaml');
    writeFileSync(ud, '#cloud-config\nruncmd: [ls]\n');
    assert.deepEqual(cloudInitFlags({ hostname: 'web', package: ['git', 'htop'], 'ssh-key': [extra], 'user-data': ud }, home), {
      hostname: 'web', packages: ['git', 'htop'], userData: '#cloud-config\nruncmd: [ls]\n',
      sshAuthorizedKeys: ['ssh-ed25519 AAAAextra x', 'ssh-ed25519 AAAAed me@here', 'ssh-rsa AAAArsa me@here'],
    });
    assert.deepEqual(cloudInitFlags({ 'cloud-init': true }, join(home, 'nowhere')), {});
    assert.throws(() => cloudInitFlags({ 'user-data': join(home, 'missing') }, home), /--user-data: cannot read/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
