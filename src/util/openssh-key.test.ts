import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.js';
import { ed25519KeyPair } from './openssh-key.js';

// OpenSSH itself is the judge of the format: ssh-keygen reads the private key back, and a signature made
// with it verifies against the public key line (so the private half really belongs to the public one).
test('an Ed25519 pair OpenSSH reads: the private key gives the public key, and its signatures verify against it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grove-openssh-key-'));
  try {
    const pair = ed25519KeyPair('grove@test-host');
    assert.match(pair.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} grove@test-host$/);
    assert.match(pair.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/);
    const key = join(dir, 'id_ed25519');
    writeFileSync(key, pair.privateKey, { mode: 0o600 });

    const derived = await run('ssh-keygen', ['-y', '-f', key], 10_000);
    assert.equal(derived.code, 0, derived.stderr);
    assert.equal(derived.stdout.trim(), pair.publicKey);

    const data = join(dir, 'data');
    writeFileSync(data, 'signed by grove');
    const sign = await run('ssh-keygen', ['-Y', 'sign', '-f', key, '-n', 'file', data], 10_000);
    assert.equal(sign.code, 0, sign.stderr);
    writeFileSync(join(dir, 'allowed'), `grove ${pair.publicKey}\n`);
    const verify = await run('sh', ['-c', `ssh-keygen -Y verify -f "$1/allowed" -I grove -n file -s "$1/data.sig" < "$1/data"`, 'sh', dir], 10_000);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /^Good "file" signature for grove with ED25519 key SHA256:/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('each pair is new', () => {
  assert.notEqual(ed25519KeyPair('a').publicKey, ed25519KeyPair('a').publicKey);
});
