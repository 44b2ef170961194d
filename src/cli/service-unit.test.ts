import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DAEMON_NODE_FLAGS, serviceUnit } from './service-unit.js';

test('bin/grove\'s shebang line and the unit give node the same daemon flags', () => {
  const shebang = readFileSync(new URL('../../../bin/grove', import.meta.url), 'utf8').split('\n', 1)[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
  const unit = serviceUnit({ scope: 'user', node: '/usr/bin/node', grove: '/opt/grove/bin/grove', serveArgs: [] });
  assert.match(unit, new RegExp(`^ExecStart=/usr/bin/node ${DAEMON_NODE_FLAGS.join(' ')} /opt/grove/bin/grove serve$`, 'm'));
});
