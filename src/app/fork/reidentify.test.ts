import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReidentify, REIDENTIFY_SCRIPT } from './reidentify.js';

test('the script\'s report lines become steps; other lines are ignored', () => {
  const out = 'entropy ok 64 bytes from the host\nhostname ok hostname: f1\nsome noise\nmachine-id skipped no /etc/machine-id in this guest\nmac failed eth0 refused 52:54:00:aa:bb:cc\nbogus ok x\ndhcp ok udhcpc release + renew (pid 42): 10.0.2.16/24\n';
  assert.deepEqual(parseReidentify(out), [
    { item: 'entropy', status: 'ok', detail: '64 bytes from the host' },
    { item: 'hostname', status: 'ok', detail: 'hostname: f1' },
    { item: 'machine-id', status: 'skipped', detail: 'no /etc/machine-id in this guest' },
    { item: 'mac', status: 'failed', detail: 'eth0 refused 52:54:00:aa:bb:cc' },
    { item: 'dhcp', status: 'ok', detail: 'udhcpc release + renew (pid 42): 10.0.2.16/24' },
  ]);
});

test('the script takes its values as arguments, never inside its text', () => {
  assert.match(REIDENTIFY_SCRIPT, /^\s*name=\$1 mac=\$2 keys=\$3 id=\$4$/m);
  assert.doesNotMatch(REIDENTIFY_SCRIPT, /\$\{/);
});
