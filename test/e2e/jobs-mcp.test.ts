/**
 * End to end for jobs over MCP with the official SDK client (Streamable HTTP): exec answers within the
 * budget the agent gives (exit code, or a job id and the output so far), job_status / job_output /
 * job_wait / job_kill, and notifications/progress carrying output while exec runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { startReady } from '../helpers/api.js';

let d: TestDaemon;
let client: Client;
before(async () => {
  d = await startDaemon();
  await createGuestVm(d, 'mj');
  await startReady(d, 'mj', { acpi: false });
  await waitFor('the agent', async () => (await d.call('GET', '/vms/mj')).body.agent?.connected === true, 90_000);
  client = new Client({ name: 'grove-e2e-jobs', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
});
after(async () => { await client?.close(); await d?.cleanup(); });

async function ok(name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void): Promise<any> {
  const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000, ...(onprogress ? { onprogress } : {}) })) as CallToolResult;
  assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
}

test('exec that ends within the budget: exit code and output, as a job', async () => {
  const r = await ok('exec', { vm: 'mj', command: 'echo hi; exit 3' });
  assert.deepEqual([r.exitCode, r.stdout, r.running, r.detached], [3, 'hi\n', false, false]);
  const j = await ok('job_status', { vm: 'mj', jobId: r.jobId });
  assert.deepEqual([j.state, j.exitCode], ['exited', 3]);
});

test('exec past the budget: job id and output so far; then job_output, job_wait, job_status', async () => {
  const r = await ok('exec', { vm: 'mj', command: 'echo first; sleep 3; echo second; exit 6', timeoutSeconds: 1.5 });
  assert.equal(r.running, true);
  assert.equal(r.exitCode, null);
  assert.equal(r.stdout, 'first\n');
  assert.equal(r.stdoutNext, 6);
  const w = await ok('job_wait', { vm: 'mj', jobId: r.jobId, timeoutSeconds: 60 });
  assert.deepEqual([w.state, w.exitCode], ['exited', 6]);
  const rest = await ok('job_output', { vm: 'mj', jobId: r.jobId, since: r.stdoutNext });
  assert.deepEqual([rest.data, rest.ended, rest.nextOffset], ['second\n', true, 13]);
  const page = await ok('job_output', { vm: 'mj', jobId: r.jobId, limit: 3 });
  assert.deepEqual([page.data, page.nextOffset, page.ended], ['fir', 3, false]);
});

test('job_kill ends a running job', async () => {
  const r = await ok('exec', { vm: 'mj', command: 'sleep 1000', timeoutSeconds: 0.5 });
  assert.equal(r.running, true);
  const k = await ok('job_kill', { vm: 'mj', jobId: r.jobId, signal: 'KILL' });
  assert.equal(k.signal, 9);
  const w = await ok('job_wait', { vm: 'mj', jobId: r.jobId, timeoutSeconds: 60 });
  assert.deepEqual([w.state, w.exitCode, w.signal], ['exited', null, 9]);
  const again = (await client.callTool({ name: 'job_kill', arguments: { vm: 'mj', jobId: r.jobId } })) as CallToolResult;
  assert.equal(again.isError, true);
  assert.equal(JSON.parse((again.content[0] as { text: string }).text).code, 'INVALID_STATE');
});

test('progress notifications carry the output while exec runs', async () => {
  const seen: Progress[] = [];
  const r = await ok('exec', { vm: 'mj', command: 'for i in 1 2 3; do echo tick$i; sleep 0.5; done' }, (p) => seen.push(p));
  assert.equal(r.exitCode, 0);
  assert.ok(seen.length >= 1);
  assert.equal(seen.map((p) => p.message).join(''), 'tick1\ntick2\ntick3\n');
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress, 'progress increases');
});

test('unknown job: a tool error NOT_FOUND', async () => {
  const r = (await client.callTool({ name: 'job_status', arguments: { vm: 'mj', jobId: 'nope' } })) as CallToolResult;
  assert.equal(r.isError, true);
  assert.equal(JSON.parse((r.content[0] as { text: string }).text).code, 'NOT_FOUND');
});
