import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostForwardTargets } from './usernet.js';

// As QEMU 7.2 prints it (captured from `info usernet` after `hostfwd_add net0 tcp:127.0.0.1:22999-10.0.2.16:22`).
const INFO = 'Hub -1 (net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n'
  + '  TCP[HOST_FORWARD]   8       127.0.0.1 22999       10.0.2.16    22     0     0\r\n'
  + '  UDP[HOST_FORWARD]   3               * 22998       10.0.2.15    53     0     0\r\n'
  + '  TCP[ESTABLISHED]   24       10.0.2.16 41000    93.184.216.34   443     0     0\r\n';

test('host forwards are read by host port, connections are not', () => {
  assert.deepEqual([...hostForwardTargets(INFO)], [[22999, '10.0.2.16'], [22998, '10.0.2.15']]);
});

test('no forwards, no user network: an empty map', () => {
  assert.equal(hostForwardTargets('Hub -1 (net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n').size, 0);
  assert.equal(hostForwardTargets('').size, 0);
});
