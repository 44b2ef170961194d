import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataLayout } from '../app/layout.js';
import { checkForeignSecret, createPrivateFile, tightenDataDir } from './data-permissions.js';

const base = mkdtempSync(join(tmpdir(), 'grove-perm-'));
after(() => rmSync(base, { recursive: true, force: true }));
const mode = (p: string): number => statSync(p).mode & 0o777;

test('a loose data dir and its secret files are tightened, and each change is reported', async () => {
  const layout = new DataLayout(join(base, 'data'));
  mkdirSync(layout.ssh, { recursive: true });
  chmodSync(layout.root, 0o755);
  chmodSync(layout.ssh, 0o755);
  for (const f of [layout.db, `${layout.db}-wal`, `${layout.db}-shm`, layout.token, join(layout.ssh, 'id_ed25519')]) {
    writeFileSync(f, 'x');
    chmodSync(f, 0o644);
  }
  writeFileSync(join(layout.ssh, 'id_ed25519.pub'), 'ssh-ed25519 AAAA');
  chmodSync(join(layout.ssh, 'id_ed25519.pub'), 0o644);

  const found = await tightenDataDir(layout);
  assert.equal(mode(layout.root), 0o700);
  assert.equal(mode(layout.ssh), 0o700);
  for (const f of [layout.db, `${layout.db}-wal`, `${layout.db}-shm`, layout.token, join(layout.ssh, 'id_ed25519')]) assert.equal(mode(f), 0o600, f);
  assert.equal(mode(join(layout.ssh, 'id_ed25519.pub')), 0o644, 'a public key stays readable');
  assert.equal(found.length, 7);
  assert.deepEqual(found[0], { path: layout.root, was: '0755', now: '0700' });
  assert.ok(found.every((f) => f.warning === undefined));
  assert.deepEqual(await tightenDataDir(layout), [], 'nothing left to change');
});

test('missing files are not created, and a tight dir is left alone', async () => {
  const layout = new DataLayout(join(base, 'fresh'));
  mkdirSync(layout.root, { mode: 0o700 });
  assert.deepEqual(await tightenDataDir(layout), []);
});

test('the database file is created 0600 whatever the umask', async () => {
  const old = process.umask(0o022);
  try {
    const file = join(base, 'made.db');
    await createPrivateFile(file);
    assert.equal(mode(file), 0o600);
  } finally {
    process.umask(old);
  }
});

test('a --token-file readable by others is warned about, never changed', async () => {
  const file = join(base, 'user-token');
  writeFileSync(file, 'x'.repeat(20));
  chmodSync(file, 0o644);
  const f = await checkForeignSecret(file);
  assert.equal(f?.was, '0644');
  assert.equal(f?.now, null);
  assert.match(f?.warning ?? '', /chmod 600/);
  assert.equal(mode(file), 0o644);
  chmodSync(file, 0o600);
  assert.equal(await checkForeignSecret(file), null);
});
