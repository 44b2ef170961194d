import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQemuVersion } from './qemu-opts.js';

test('parseQemuVersion reads both qemu-system and qemu-img output', () => {
  assert.equal(parseQemuVersion('QEMU emulator version 7.2.0 (Debian 1:7.2+dfsg-7+deb12u6)\nCopyright ...\n'), '7.2.0');
  assert.equal(parseQemuVersion('qemu-img version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)\n'), '8.2.2');
  assert.equal(parseQemuVersion('something else\nmore'), 'something else');
  assert.equal(parseQemuVersion(''), 'unknown');
});
