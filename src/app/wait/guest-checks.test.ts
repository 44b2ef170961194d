import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listeningAddress } from './guest-checks.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1E61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2563 1 0000000000000000 100 0 0 10 0
   1: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:0000A7D0 00000000     0        0 2712 2 0000000000000000 20 4 29 10 -1
   2: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2600 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
`;

test('a port is open when a socket listens on it (state 0A), on any address', () => {
  assert.equal(listeningAddress(TCP, 7777), '00000000:7777');
  assert.equal(listeningAddress(TCP, 80), '0100007F:80');
  assert.equal(listeningAddress(TCP6, 22), '00000000000000000000000000000000:22');
});

test('an established connection on the port, or another port, is not a listener', () => {
  assert.equal(listeningAddress(TCP, 22), null);
  assert.equal(listeningAddress(TCP, 7778), null);
  assert.equal(listeningAddress('', 22), null);
});
