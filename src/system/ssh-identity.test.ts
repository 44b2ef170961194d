import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSshIdentity } from './ssh-identity.js';

test('the key pair: made on first use (0600 / 0644), then the same; made again when its public half is missing', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'grove-ssh-id-')), 'ssh');
  try {
    const id = new FileSshIdentity(dir);
    const [a, b] = await Promise.all([id.publicKey(), id.publicKey()]);
    assert.equal(a, b, 'two callers at once get one pair');
    assert.equal(readFileSync(`${id.privateKeyPath}.pub`, 'utf8'), `${a}\n`);
    assert.equal(statSync(id.privateKeyPath).mode & 0o777, 0o600);
    assert.equal(statSync(`${id.privateKeyPath}.pub`).mode & 0o777, 0o644);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(dir).sort(), ['id_ed25519', 'id_ed25519.pub']);
    assert.equal(await new FileSshIdentity(dir).publicKey(), a, 'kept across restarts');

    rmSync(`${id.privateKeyPath}.pub`);
    const c = await new FileSshIdentity(dir).publicKey();
    assert.notEqual(c, a);
    assert.match(readFileSync(id.privateKeyPath, 'utf8'), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});
