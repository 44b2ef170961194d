import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainError } from '../../domain/errors.js';
import { guestPath, parseListing, rechunk } from './file-service.js';

test('the listing output: names NUL-terminated, then one stat line per name', () => {
  const out = Buffer.concat([Buffer.from('a b\0new\nline\0d\0\0'), Buffer.from('81a4 12 1700000000 0 0 1\n81ed 0 1700000001 1000 100 1\n41ed 4096 1700000002 0 0 2\n')]);
  assert.deepEqual(parseListing(out), [
    { name: 'a b', type: 'file', size: 12, mode: '0644', modifiedAt: '2023-11-14T22:13:20.000Z', uid: 0, gid: 0 },
    { name: 'new\nline', type: 'file', size: 0, mode: '0755', modifiedAt: '2023-11-14T22:13:21.000Z', uid: 1000, gid: 100 },
    { name: 'd', type: 'directory', size: 4096, mode: '0755', modifiedAt: '2023-11-14T22:13:22.000Z', uid: 0, gid: 0 },
  ]);
  assert.equal(parseListing(Buffer.from('a\0b\0\0' + '81a4 1 1 0 0 1\n'))?.length, undefined, 'a line short: the directory changed');
  assert.deepEqual(parseListing(Buffer.alloc(0)), []);
  assert.equal(parseListing(Buffer.from('a\0\0a1ff 1 1 0 0 1\n'))![0]!.type, 'symlink');
});

test('guest paths must be absolute and free of NUL; trailing slashes go', () => {
  assert.equal(guestPath('/tmp/x/'), '/tmp/x');
  assert.equal(guestPath('/'), '/');
  for (const bad of ['tmp/x', '', '/a\0b']) assert.throws(() => guestPath(bad), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION_FAILED');
});

test('rechunk feeds pieces of exactly the chunk size, the last one shorter', async () => {
  async function* src(): AsyncGenerator<Buffer> {
    yield Buffer.from('abc');
    yield Buffer.from('defghij');
    yield Buffer.from('');
    yield Buffer.from('k');
  }
  const out: string[] = [];
  for await (const c of rechunk(src(), 4)) out.push(c.toString());
  assert.deepEqual(out, ['abcd', 'efgh', 'ijk']);
});
