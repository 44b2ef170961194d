import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostnameFor, parseCloudInitConfig } from './cloud-init.js';
import { DomainError } from './errors.js';

test('the default hostname is the VM name made a hostname label', () => {
  assert.equal(hostnameFor('web1', null), 'web1');
  assert.equal(hostnameFor('Web_1.prod', null), 'web-1-prod');
  assert.equal(hostnameFor('_x_', null), 'x');
  assert.equal(hostnameFor('___', null), 'grove-vm');
  assert.equal(hostnameFor('web1', 'db.example.org'), 'db.example.org');
});

test('a carried config (bundle manifest) is checked like the wire input', () => {
  const ok = { user: 'grove', passwordHash: null, sshAuthorizedKeys: ['ssh-ed25519 AAAA x'], hostname: null, packages: ['git'], timezone: 'UTC', userData: null };
  assert.deepEqual(parseCloudInitConfig(ok), ok);
  const refused = (o: unknown) => assert.throws(() => parseCloudInitConfig(o), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED', JSON.stringify(o));
  refused(null);
  refused({ ...ok, extra: 1 });
  refused({ ...ok, user: 'root' });
  refused({ ...ok, user: 'Bad User' });
  refused({ ...ok, passwordHash: 'plain' });
  refused({ ...ok, sshAuthorizedKeys: ['a\nb'] });
  refused({ ...ok, packages: ['a; rm -rf /'] });
  refused({ ...ok, hostname: '-x' });
  refused({ ...ok, timezone: '../etc' });
  refused({ ...ok, sshAuthorizedKeys: 'x' });
  refused({ ...ok, sshAuthorizedKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] });
});
