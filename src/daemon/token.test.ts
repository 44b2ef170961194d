import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadToken } from './token.js';

const dir = mkdtempSync(join(tmpdir(), 'grove-token-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const defaultFile = join(dir, 'default-token');

test('a GROVE_TOKEN with inner whitespace is refused with a message saying so', async () => {
  for (const value of ['abcdefgh ijklmnopqrstu', 'abcdefghij\tklmnopqrstu', 'abcdefghijk\nlmnopqrstu']) {
    await assert.rejects(loadToken({ tokenValue: value, tokenFile: null, defaultFile }), (e: Error) => {
      assert.match(e.message, /GROVE_TOKEN/);
      assert.match(e.message, /whitespace/);
      return true;
    }, JSON.stringify(value));
  }
});

test('a token file with inner whitespace is refused, naming the file', async () => {
  const file = join(dir, 'spaced');
  writeFileSync(file, 'first-half-token second-half-token\n');
  await assert.rejects(loadToken({ tokenValue: null, tokenFile: file, defaultFile }), (e: Error) => {
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.message, /whitespace/);
    return true;
  });
});

test('a token under 16 characters is refused, from the environment or a file', async () => {
  await assert.rejects(loadToken({ tokenValue: 'short-token', tokenFile: null, defaultFile }), /11 characters; at least 16/);
  const file = join(dir, 'short');
  writeFileSync(file, '  fifteen-chars-x\n');
  await assert.rejects(loadToken({ tokenValue: null, tokenFile: file, defaultFile }), /15 characters; at least 16/);
});

test('a token with a non-ASCII letter is refused (it cannot travel in a header as written)', async () => {
  await assert.rejects(loadToken({ tokenValue: 'jeton-privé-de-grove', tokenFile: null, defaultFile }), /visible ASCII/);
});

test('surrounding whitespace is trimmed; a 16-character token is accepted', async () => {
  const t = await loadToken({ tokenValue: '  0123456789abcdef\n', tokenFile: null, defaultFile });
  assert.deepEqual(t, { token: '0123456789abcdef', origin: 'GROVE_TOKEN', created: false });
});

test('a missing default file is created with a 256-bit token, mode 0600', async () => {
  const t = await loadToken({ tokenValue: null, tokenFile: null, defaultFile });
  assert.equal(t.created, true);
  assert.equal(readFileSync(defaultFile, 'utf8').trim(), t.token);
  assert.equal(statSync(defaultFile).mode & 0o777, 0o600);
  const again = await loadToken({ tokenValue: null, tokenFile: null, defaultFile });
  assert.deepEqual(again, { token: t.token, origin: defaultFile, created: false });
});
