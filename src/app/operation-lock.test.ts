import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OperationLocks, type VmOperation } from './operation-lock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('operations on one VM run one at a time, in arrival order', async () => {
  const locks = new OperationLocks();
  const log: string[] = [];
  const op = (name: VmOperation, ms: number) => locks.run('vm1', name, async () => { log.push(`${name}+`); await sleep(ms); log.push(`${name}-`); return name; });
  const results = await Promise.all([op('start', 30), op('pause', 5), op('stop', 1)]);
  assert.deepEqual(results, ['start', 'pause', 'stop']);
  assert.deepEqual(log, ['start+', 'start-', 'pause+', 'pause-', 'stop+', 'stop-']);
  assert.equal(locks.isBusy('vm1'), false);
});

test('different VMs do not wait for each other', async () => {
  const locks = new OperationLocks();
  const log: string[] = [];
  await Promise.all([
    locks.run('x', 'stop', async () => { await sleep(30); log.push('x'); }),
    locks.run('y', 'start', async () => { log.push('y'); }),
  ]);
  assert.deepEqual(log, ['y', 'x']);
});

test('a failing operation releases the lock for the next', async () => {
  const locks = new OperationLocks();
  await assert.rejects(locks.run('v', 'start', async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await locks.run('v', 'stop', async () => 1), 1);
});

test('waiting is bounded and names the running operation', async () => {
  const locks = new OperationLocks(20);
  const slow = locks.run('v', 'stop', () => sleep(100));
  await assert.rejects(locks.run('v', 'pause', async () => 1), (e: Error & { code?: string }) => e.code === 'OPERATION_IN_PROGRESS' && /stop/.test(e.message));
  await slow;
});

test('a waiter that gives up leaves the VM held by the operation still running', async () => {
  const locks = new OperationLocks(20);
  let stopDone = false;
  const slow = locks.run('v', 'stop', async () => { await sleep(100); stopDone = true; });
  await assert.rejects(locks.run('v', 'pause', async () => 1), /busy with 'stop'/);
  assert.equal(locks.isBusy('v'), true, 'stop is still running');
  // The next one queues behind stop again (here it gives up too) instead of running beside it.
  await assert.rejects(locks.run('v', 'start', async () => { assert.ok(stopDone, 'start ran beside stop'); }), /busy with 'stop'/);
  await slow;
  await sleep(0);
  assert.equal(locks.isBusy('v'), false);
});
