import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCan, canDo, ACTION_STATES } from './vm-state.js';
import { DomainError } from './errors.js';
import { VM_STATES } from './vm.js';

test('every action names only known states', () => {
  for (const states of Object.values(ACTION_STATES)) {
    for (const s of states) assert.ok((VM_STATES as readonly string[]).includes(s));
  }
});

test('pause only from running; resume only from paused', () => {
  assert.equal(canDo('pause', 'running'), true);
  assert.equal(canDo('pause', 'paused'), false);
  assert.equal(canDo('resume', 'paused'), true);
  assert.equal(canDo('resume', 'running'), false);
});

test('start recovers from error and suspended, not from running', () => {
  assert.equal(canDo('start', 'error'), true);
  assert.equal(canDo('start', 'suspended'), true);
  assert.equal(canDo('start', 'running'), false);
});

test('force-stop recovers from error and interrupts a graceful stop', () => {
  assert.equal(canDo('forceStop', 'error'), true);
  assert.equal(canDo('forceStop', 'stopping'), true);
  assert.equal(canDo('forceStop', 'stopped'), false);
});

test('wrong state error names the current state and the allowed ones', () => {
  try {
    assertCan('pause', 'stopped', 'web1');
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof DomainError);
    assert.equal(e.code, 'INVALID_STATE');
    assert.match(e.message, /stopped/);
    assert.match(e.message, /web1/);
    assert.deepEqual(e.extra.allowedStates, ['running']);
    assert.equal(e.extra.state, 'stopped');
  }
});

test('a provisioning VM can be deleted or changed, not started, stopped or snapshotted', () => {
  assert.equal(canDo('delete', 'provisioning'), true);
  assert.equal(canDo('updateHardware', 'provisioning'), true);
  for (const a of ['start', 'forceStop', 'stop', 'snapshot', 'clone', 'export', 'resizeDisk'] as const) assert.equal(canDo(a, 'provisioning'), false, a);
  assert.throws(() => assertCan('start', 'provisioning', 'web'), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE'
    && /cannot start VM 'web' while it is provisioning/.test(e.message));
});
