import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeQmpServer } from '../../../../test/fakes/fake-qmp-server.js';
import { QmpClient } from './client.js';
import * as qmp from './commands.js';
import { QmpClosedError, QmpJobError, QmpTimeoutError } from './errors.js';

async function setup(t: TestContext): Promise<{ server: FakeQmpServer; client: QmpClient }> {
  const server = await FakeQmpServer.start();
  t.after(() => server.close());
  const client = await QmpClient.connect(server.socketPath, { connectTimeoutMs: 2000 });
  t.after(() => client.close());
  return { server, client };
}

function job(status: qmp.JobStatus, error?: string): qmp.JobInfo {
  const j: qmp.JobInfo = { id: 'j1', type: 'snapshot-save', status, 'current-progress': 1, 'total-progress': 1 };
  if (error !== undefined) j.error = error;
  return j;
}

test('wrappers send QEMU command names and argument spellings', async (t) => {
  const { server, client } = await setup(t);
  server.handle('block_resize', { return: {} });
  server.handle('snapshot-save', { return: {} });
  server.handle('human-monitor-command', { return: 'info\r\n' });
  server.handle('query-status', { return: { status: 'paused', running: false, singlestep: false } });
  await qmp.blockResize(client, 'd0', 1 << 30);
  await qmp.snapshotSave(client, { jobId: 'j1', tag: 't', vmstate: 'd0', devices: ['d0'] });
  assert.equal(await qmp.humanMonitorCommand(client, 'info snapshots'), 'info\r\n');
  assert.deepEqual(await qmp.queryStatus(client), { status: 'paused', running: false, singlestep: false });
  const args = server.received.slice(1).map((c) => [c.execute, c.arguments]);
  assert.deepEqual(args, [
    ['block_resize', { 'node-name': 'd0', size: 1 << 30 }],
    ['snapshot-save', { 'job-id': 'j1', tag: 't', vmstate: 'd0', devices: ['d0'] }],
    ['human-monitor-command', { 'command-line': 'info snapshots' }],
    ['query-status', undefined],
  ]);
  await assert.rejects(qmp.blockResize(client, 'd0', -1), RangeError);
});

test('waitForJob handles a job that concluded before it was called', async (t) => {
  const { server, client } = await setup(t);
  server.handle('query-jobs', { return: [job('concluded')] });
  server.handle('job-dismiss', { return: {} });
  const info = await qmp.waitForJob(client, 'j1', 1000);
  assert.equal(info.status, 'concluded');
  const dismiss = server.received.find((c) => c.execute === 'job-dismiss');
  assert.deepEqual(dismiss?.arguments, { id: 'j1' });
});

test('waitForJob waits for the concluded event, then dismisses', async (t) => {
  const { server, client } = await setup(t);
  let state: qmp.JobStatus = 'running';
  server.handle('query-jobs', () => ({ return: [job(state)] }));
  server.handle('job-dismiss', { return: {} });
  const waiting = qmp.waitForJob(client, 'j1', 2000);
  await delay(30);
  server.sendEvent('JOB_STATUS_CHANGE', { id: 'other', status: 'concluded' });
  server.sendEvent('JOB_STATUS_CHANGE', { id: 'j1', status: 'pending' });
  await delay(30);
  assert.equal(server.received.filter((c) => c.execute === 'job-dismiss').length, 0);
  state = 'concluded';
  server.sendEvent('JOB_STATUS_CHANGE', { id: 'j1', status: 'concluded' });
  assert.equal((await waiting).status, 'concluded');
  assert.equal(server.received.filter((c) => c.execute === 'job-dismiss').length, 1);
});

test('waitForJob reports a failed job as QmpJobError and still dismisses it', async (t) => {
  const { server, client } = await setup(t);
  server.handle('query-jobs', { return: [job('concluded', "Snapshot 'x' does not exist")] });
  server.handle('job-dismiss', { return: {} });
  await assert.rejects(qmp.waitForJob(client, 'j1', 1000), (err: unknown) => {
    assert.ok(err instanceof QmpJobError);
    assert.equal(err.jobId, 'j1');
    assert.equal(err.jobType, 'snapshot-save');
    assert.equal(err.desc, "Snapshot 'x' does not exist");
    return true;
  });
  assert.equal(server.received.filter((c) => c.execute === 'job-dismiss').length, 1);
});

test('waitForJob times out as job:<id> and rejects for an unknown job', async (t) => {
  const { server, client } = await setup(t);
  server.handle('query-jobs', { return: [job('running')] });
  await assert.rejects(qmp.waitForJob(client, 'j1', 50), (err: unknown) => {
    assert.ok(err instanceof QmpTimeoutError);
    assert.equal(err.command, 'job:j1');
    return true;
  });
  await assert.rejects(qmp.waitForJob(client, 'nope', 50), /not found/);
});

test('quit counts the connection closing before the reply as success', async (t) => {
  const { server, client } = await setup(t);
  server.handle('quit', () => {
    server.dropConnections();
    return { noReply: true };
  });
  await qmp.quit(client);
  assert.equal(client.closed, true);
  await assert.rejects(qmp.quit(client), QmpClosedError);
});
