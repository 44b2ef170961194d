import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha512Crypt } from './sha512-crypt.js';

test('SHA-512 crypt matches the specification\'s test vectors and glibc', () => {
  // From Drepper's "Unix crypt using SHA-256 and SHA-512" (default rounds), and `openssl passwd -6` for the rest.
  assert.equal(sha512Crypt('Hello world!', 'saltstring'),
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
  assert.equal(sha512Crypt('p\u00e9ss w0rd with a long long long long long long long long long long long long long long text', 'abcdefgh12345678'),
    '$6$abcdefgh12345678$fkkgMN3.3Z7Icx6K4PtgfPn/3BcYFoC9gROsfNs8zLzg/z0iu6TgDOcuab5ubwJlAwMbvfmXQcwLUHmGmFM/3.');
  const a = sha512Crypt('same');
  assert.match(a, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
  assert.notEqual(sha512Crypt('same'), a, 'a random salt each time');
});
