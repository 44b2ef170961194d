import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostName, isLoopbackName } from './security.js';

test('host header parsing handles ports and IPv6 brackets', () => {
  assert.equal(hostName('localhost:22100'), 'localhost');
  assert.equal(hostName('127.0.0.1'), '127.0.0.1');
  assert.equal(hostName('[::1]:22100'), '::1');
  assert.equal(hostName('[::1'), null);
  assert.equal(hostName(undefined), null);
  assert.equal(hostName('Example.COM:80'), 'example.com');
});

test('only loopback names pass', () => {
  for (const h of ['localhost', 'a.localhost', '127.0.0.1', '127.8.9.10', '::1']) assert.equal(isLoopbackName(h), true, h);
  for (const h of ['evil.example', '10.0.0.1', '0.0.0.0', 'localhost.evil.example', '::2', '128.0.0.1']) assert.equal(isLoopbackName(h), false, h);
});
