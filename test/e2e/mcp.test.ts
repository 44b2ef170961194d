/**
 * End to end for `/mcp`: the real daemon, the official SDK client over Streamable HTTP and over stdio
 * (through the `grove mcp` bridge), plain JSON-RPC POSTs as curl sends them, and an agent-style flow on
 * the real test guest (QEMU, TCG).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { killVmsOf, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE, REPO_ROOT, guestFiles } from '../helpers/guest.js';

/** What the daemon can serve today. */
const EXPECTED_TOOLS = [
  'list_vms', 'get_vm', 'create_vm', 'update_vm', 'delete_vm', 'reorder_vms', 'stop_all', 'start_vm', 'stop_vm',
  'force_stop_vm', 'pause_vm', 'resume_vm', 'send_console', 'read_console', 'console_execute', 'get_host_info',
  'get_metrics', 'vm_runtime', 'vm_errors', 'list_webhooks', 'register_webhook', 'delete_webhook', 'suspend_vm',
  'get_suspend_status', 'list_snapshots', 'create_snapshot', 'restore_snapshot', 'delete_snapshot', 'resize_disk', 'take_screenshot',
  'export_vm', 'import_vm', 'clone_vm',
  'restart_vm', 'clear_console', 'wait_for_console',
  'list_distros', 'list_downloads', 'download_distro',
  'launch_vm',
  'exec', 'ssh_execute', 'vm_ip', 'file_upload', 'file_download', 'file_list',
  'send_keys', 'type_text', 'mouse_click', 'mouse_move', 'job_status', 'job_output', 'job_wait', 'job_kill', 'wait_until', 'fork_vm',
];
/** Our own tools, not in the reference list. */
const OWN_TOOLS = ['restart_vm', 'clear_console', 'wait_for_console', 'download_distro', 'exec', 'launch_vm',
  'send_keys', 'type_text', 'mouse_click', 'mouse_move', 'job_status', 'job_output', 'job_wait', 'job_kill', 'wait_until', 'fork_vm'];
/** Long enough for a TCG boot; the SDK's default request timeout is 60 s. */
const SLOW = { timeout: 150_000 };

let d: TestDaemon;
let client: Client;
const clients: Client[] = [];

async function connectHttp(): Promise<Client> {
  const c = new Client({ name: 'grove-e2e', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
  clients.push(c);
  return c;
}

async function call(name: string, args: Record<string, unknown> = {}, c: Client = client, opts = SLOW): Promise<CallToolResult> {
  return (await c.callTool({ name, arguments: args }, undefined, opts)) as CallToolResult;
}

/** A successful tool result: structuredContent, and the same JSON as text. */
async function ok(name: string, args: Record<string, unknown> = {}, c: Client = client): Promise<any> {
  const r = await call(name, args, c);
  assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
  const text = r.content.find((x) => x.type === 'text');
  assert.ok(text && text.type === 'text');
  assert.deepEqual(JSON.parse(text.text), r.structuredContent, `${name}: text content is the structured result`);
  return r.structuredContent;
}

/** A tool failure: isError with the problem (code, detail) as JSON text. */
function problemOf(r: CallToolResult): any {
  assert.equal(r.isError, true, `expected a tool error, got ${JSON.stringify(r)}`);
  const text = r.content.find((x) => x.type === 'text');
  assert.ok(text && text.type === 'text');
  const p = JSON.parse(text.text);
  assert.equal(typeof p.detail, 'string');
  return p;
}

async function rpc(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${d.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

before(async () => {
  d = await startDaemon();
  client = await connectHttp();
});

after(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  if (!d) return;
  if (process.env['GROVE_E2E_DEBUG']) console.log(d.output());
  try {
    await d.cleanup();
  } finally {
    killVmsOf(d.dataDir);
  }
});

test('SDK client over Streamable HTTP: initialize, tools/list with input and output schemas', async () => {
  assert.equal(client.getServerVersion()?.name, 'grove');
  assert.ok(client.getServerCapabilities()?.tools, 'tools capability announced');
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), [...EXPECTED_TOOLS].sort());
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object', `${t.name} inputSchema`);
    assert.equal(t.outputSchema?.type, 'object', `${t.name} outputSchema`);
    assert.ok((t.description ?? '').length > 40, `${t.name} has a real description`);
    assert.ok(!JSON.stringify(t).includes('$ref'), `${t.name}: schemas stand alone`);
  }
});

test('tool names and arguments match the reference list where they overlap', async () => {
  const reference = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'reference-mcp-tools.json'), 'utf8')) as { tools: Tool[] };
  const ours = new Map((await client.listTools()).tools.map((t) => [t.name, t]));
  let overlap = 0;
  for (const ref of reference.tools) {
    const t = ours.get(ref.name);
    if (!t) continue;
    overlap++;
    const props = Object.keys(t.inputSchema.properties ?? {});
    for (const arg of Object.keys(ref.inputSchema.properties ?? {})) assert.ok(props.includes(arg), `${ref.name} takes '${arg}'`);
    // Every call valid under the reference stays valid: we never require more than it does.
    for (const req of t.inputSchema.required ?? []) assert.ok((ref.inputSchema.required ?? []).includes(req), `${ref.name}: '${req}' is required by us, not by the reference`);
  }
  assert.equal(overlap, EXPECTED_TOOLS.length - OWN_TOOLS.length, `all but ${OWN_TOOLS.join(', ')} come from the reference`);
});

test('plain JSON-RPC POSTs (curl style: no SSE in Accept, no session) get one JSON body with HTTP 200', async () => {
  const init = await rpc({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } } });
  assert.equal(init.status, 200);
  assert.match(init.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(init.headers.get('mcp-session-id'), null, 'stateless: no session');
  const initBody = await init.json() as any;
  assert.equal(initBody.id, 1);
  assert.equal(initBody.result.serverInfo.name, 'grove');

  const list = await rpc({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
  assert.equal(list.status, 200);
  assert.equal(((await list.json()) as any).result.tools.length, EXPECTED_TOOLS.length);

  const created = await d.call('POST', '/vms', { name: 'mcp-raw', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: guestFiles().cmdline, memoryMB: 256, diskGB: 1 });
  assert.equal(created.status, 201);
  const res = await rpc({ jsonrpc: '2.0', id: 'three', method: 'tools/call', params: { name: 'list_vms', arguments: {} } }, { accept: 'application/json' });
  assert.equal(res.status, 200);
  const body = await res.json() as any;
  assert.equal(body.id, 'three');
  assert.equal(body.result.isError, undefined);
  const rest = await d.call('GET', '/vms');
  assert.deepEqual(body.result.structuredContent, { vms: rest.body }, 'same VMs as GET /api/v1/vms');
  assert.deepEqual(JSON.parse(body.result.content[0].text), body.result.structuredContent);
  assert.equal((await d.call('DELETE', '/vms/mcp-raw')).status, 204);

  assert.equal((await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202, 'a notification alone: 202, no body');
  const batch = await rpc([{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_host_info', arguments: {} } }]);
  assert.equal(batch.status, 200);
  assert.deepEqual(((await batch.json()) as any[]).map((m) => m.id).sort(), [1, 2]);
  const notRpc = await rpc({ hello: 'world' });
  assert.equal(notRpc.status, 400);
  assert.equal(((await notRpc.json()) as any).error.code, -32600);
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-protocol-version': '1999-01-01' })).status, 400);
  const get = await fetch(`${d.url}/mcp`, { headers: { authorization: `Bearer ${d.token}`, accept: 'text/event-stream' } });
  assert.equal(get.status, 405, 'stateless: no server-initiated SSE stream');
  await get.body?.cancel();
});

test('tools/call answers follow the current state on both faces, byte for byte what the SDK path sends', async () => {
  const created = await d.call('POST', '/vms', { name: 'mcp-state-a', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: guestFiles().cmdline, memoryMB: 256, diskGB: 1 });
  assert.equal(created.status, 201);
  const id = (created.body as { id: string }).id;
  const auth = { authorization: `Bearer ${d.token}` };
  const restText = async (path: string): Promise<string> => (await fetch(`${d.url}/api/v1${path}`, { headers: auth })).text();
  const message = (rid: number | string, name: string, args: Record<string, unknown>) => ({ jsonrpc: '2.0', id: rid, method: 'tools/call', params: { name, arguments: args } });
  const mcpText = async (body: unknown): Promise<string> => (await rpc(body, { accept: 'application/json' })).text();

  for (const name of ['mcp-state-a', 'mcp-state-b']) {
    if (name === 'mcp-state-b') assert.equal((await d.call('PATCH', `/vms/${id}`, { name })).status, 200);
    // Each face answers from the state of the moment: the renamed VM shows at once on both, the same bytes.
    const list = JSON.parse(await mcpText(message(1, 'list_vms', {})));
    const restList = await restText('/vms');
    assert.equal(JSON.stringify(list.result.structuredContent.vms), restList, `${name}: MCP list is the REST list`);
    assert.equal(list.result.content[0].text, `{"vms":${restList}}`);
    assert.ok(list.result.structuredContent.vms.some((v: { id: string; name: string }) => v.id === id && v.name === name), `${name} listed`);
    const one = JSON.parse(await mcpText(message(2, 'get_vm', { vm: id })));
    assert.equal(JSON.stringify(one.result.structuredContent), await restText(`/vms/${id}`));
    assert.equal(one.result.structuredContent.name, name);
  }

  // A batch of one goes through the SDK's Server; the lone request takes the fast path. Same bytes.
  for (const [rid, name, args] of [[3, 'list_vms', {}], ['x"y', 'get_vm', { vm: id }], [4, 'get_vm', { vm: 'no-such-vm' }], [5, 'list_vms', { verbose: true }], [6, 'no_such_tool', {}]] as const) {
    const fast = await mcpText(message(rid, name, args));
    assert.equal(await mcpText([message(rid, name, args)]), `[${fast}]`, `${name} ${JSON.stringify(args)}`);
  }
  assert.equal((await d.call('DELETE', `/vms/${id}`)).status, 204);
  assert.ok(!JSON.parse(await mcpText(message(7, 'list_vms', {}))).result.structuredContent.vms.some((v: { id: string }) => v.id === id), 'a deleted VM is gone from the list');
});

test('every POST with a request gets a JSON-RPC answer: unknown methods, resources/list, a batch cancelling its own request', async () => {
  // A guard so a regression fails here instead of hanging the suite; the answers come at once.
  const bounded = { signal: AbortSignal.timeout(30_000) };
  const post = (body: unknown) => fetch(`${d.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body), ...bounded });
  for (const method of ['resources/list', 'prompts/list', 'no/such/method']) {
    const res = await post({ jsonrpc: '2.0', id: 41, method });
    assert.equal(res.status, 200, method);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 41, error: { code: ErrorCode.MethodNotFound, message: 'Method not found' } }, method);
  }
  const batch = await post([
    { jsonrpc: '2.0', id: 1, method: 'ping' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_host_info', arguments: {} } },
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2, reason: 'no longer needed' } },
  ]);
  assert.equal(batch.status, 200);
  const answers = (await batch.json()) as any[];
  assert.deepEqual(answers.map((m) => [m.id, m.error?.code ?? 'result']).sort(), [[1, 'result'], [2, -32800]]);
  const onlyNotes = await post([{ jsonrpc: '2.0', method: 'notifications/initialized' }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 5 } }]);
  assert.equal(onlyNotes.status, 202, 'notifications only: 202');
  assert.equal(await onlyNotes.text(), '');

  // The official SDK client gets its answer too, instead of waiting out its own request timeout.
  await assert.rejects(client.listResources(undefined, { timeout: 30_000 }), (e: unknown) => e instanceof McpError && e.code === (ErrorCode.MethodNotFound as number));
  await assert.rejects(client.listPrompts(undefined, { timeout: 30_000 }), (e: unknown) => e instanceof McpError && e.code === (ErrorCode.MethodNotFound as number));
});

test('/mcp needs the token and refuses a foreign Origin', async () => {
  const noToken = await fetch(`${d.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
  assert.equal(noToken.status, 401);
  assert.equal(((await noToken.json()) as any).code, 'UNAUTHORIZED');
  const wrong = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { authorization: 'Bearer nope' });
  assert.equal(wrong.status, 401);
  const foreign = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { origin: 'http://evil.example' });
  assert.equal(foreign.status, 403);
  assert.equal(((await foreign.json()) as any).code, 'FORBIDDEN');
  const own = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { origin: d.url });
  assert.equal(own.status, 200, 'the daemon\'s own origin is fine');
});

test('tool failures are isError results with the problem code; an unknown tool is a protocol error', async () => {
  const missing = problemOf(await call('get_vm', { vm: 'no-such-vm' }));
  assert.equal(missing.code, 'VM_NOT_FOUND');
  assert.match(missing.detail, /no-such-vm/);

  const badType = problemOf(await call('get_vm', { vm: 42 }));
  assert.equal(badType.code, 'VALIDATION_FAILED');
  const unknownArg = problemOf(await call('list_vms', { verbose: true }));
  assert.equal(unknownArg.code, 'VALIDATION_FAILED');
  const noText = problemOf(await call('send_console', { vm: 'no-such-vm' }));
  assert.equal(noText.code, 'VALIDATION_FAILED', 'send_console needs text or keys');

  const badName = problemOf(await call('create_vm', { name: 'bad name!' }));
  assert.equal(badName.code, 'VALIDATION_FAILED');
  const noDistro = problemOf(await call('launch_vm', { distro: 'no-such-distro' }));
  assert.equal(noDistro.code, 'DISTRO_NOT_FOUND');
  const badWait = problemOf(await call('launch_vm', { distro: 'debian-12', waitFor: 'agent' }));
  assert.equal(badWait.code, 'VALIDATION_FAILED');

  await assert.rejects(client.callTool({ name: 'gui_launch', arguments: { vm: 'x' } }), (e: unknown) => e instanceof McpError && e.code === (ErrorCode.InvalidParams as number));
});

test('definition and read-only tools on a stopped VM', async () => {
  const g = guestFiles();
  const a = await ok('create_vm', { name: 'mcp-def-a', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB: 256, diskGB: 1 });
  const b = await ok('create_vm', { name: 'mcp-def-b', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB: 256, diskGB: 1 });
  const updated = await ok('update_vm', { vm: 'mcp-def-a', cpu: 2, memoryMB: 384 });
  assert.equal(updated.cpu, 2);
  assert.equal(updated.memoryMB, 384);
  const order = (await ok('reorder_vms', { order: [b.id, 'mcp-def-a'] })).vms.map((v: any) => v.name);
  assert.deepEqual(order.slice(0, 2), ['mcp-def-b', 'mcp-def-a']);
  const rt = await ok('vm_runtime', { vm: a.id });
  assert.equal(rt.state, 'stopped');
  assert.equal(rt.pid, null);
  assert.deepEqual(await ok('vm_errors', { vm: 'mcp-def-a' }), { errors: [] });
  const read = await ok('read_console', { vm: 'mcp-def-a' });
  assert.equal(read.data, '');
  assert.equal(typeof (await ok('clear_console', { vm: 'mcp-def-a' })).offset, 'number');
  assert.ok((await ok('get_metrics')).vms.some((v: any) => v.name === 'mcp-def-b'));
  assert.deepEqual(await ok('stop_all', { timeoutSeconds: 5 }), { results: [] }, 'nothing running here');
  assert.equal(problemOf(await call('wait_for_console', { vm: 'mcp-def-a', pattern: 'never', timeoutSeconds: 1 })).code, 'INVALID_STATE');
  assert.equal(problemOf(await call('wait_for_console', { vm: 'mcp-def-a', pattern: '/bin/sh' })).code, 'VALIDATION_FAILED', 'a pattern that is not a valid /regex/flags');
  const cloned = await ok('clone_vm', { vm: 'mcp-def-a', name: 'mcp-def-c' });
  assert.deepEqual([cloned.name, cloned.state, cloned.cpu], ['mcp-def-c', 'stopped', 2]);
  assert.equal(problemOf(await call('clone_vm', { vm: 'mcp-def-a', name: 'mcp-def-b' })).code, 'CONFLICT');
  for (const vm of ['mcp-def-a', 'mcp-def-b', 'mcp-def-c']) await ok('delete_vm', { vm });
});

test('webhook tools: register, list, delete', async () => {
  const hook = await ok('register_webhook', { url: 'http://127.0.0.1:9/grove-hook', events: ['vm.*'], description: 'mcp e2e' });
  assert.equal(hook.hasSecret, false);
  assert.deepEqual(hook.events, ['vm.*']);
  assert.ok((await ok('list_webhooks')).webhooks.some((h: any) => h.id === hook.id));
  assert.deepEqual(await ok('delete_webhook', { id: hook.id }), { id: hook.id, deleted: true });
  assert.ok(!(await ok('list_webhooks')).webhooks.some((h: any) => h.id === hook.id));
  assert.equal(problemOf(await call('delete_webhook', { id: hook.id })).code, 'NOT_FOUND');
  assert.equal(problemOf(await call('register_webhook', { url: 'not a url' })).code, 'VALIDATION_FAILED');
});

test('SDK client over stdio through the grove mcp bridge', async () => {
  const stdio = new Client({ name: 'grove-e2e-stdio', version: '1' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(REPO_ROOT, 'bin', 'grove'), 'mcp'],
    env: { PATH: process.env['PATH'] ?? '', GROVE_URL: d.url, GROVE_TOKEN: d.token },
    stderr: 'pipe',
  });
  await stdio.connect(transport);
  clients.push(stdio);
  assert.equal(stdio.getServerVersion()?.name, 'grove');
  const { tools } = await stdio.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), [...EXPECTED_TOOLS].sort());
  assert.ok(Array.isArray((await ok('list_vms', {}, stdio)).vms));
  assert.equal((await ok('get_host_info', {}, stdio)).accelerator, 'tcg');
  assert.equal(problemOf(await call('get_vm', { vm: 'no-such-vm' }, stdio)).code, 'VM_NOT_FOUND');
  await assert.rejects(stdio.callTool({ name: 'no_such_tool', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === (ErrorCode.InvalidParams as number));
  await stdio.close();
});

test('agent flow on the real guest: create, start, wait for the console, execute, screenshot, pause/resume, stop, snapshot, resize', async () => {
  const g = guestFiles();
  const vm = await ok('create_vm', { name: 'mcp-agent', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB: 256, diskGB: 1 });
  assert.equal(vm.state, 'stopped');
  assert.equal((await ok('get_vm', { vm: vm.id })).name, 'mcp-agent');

  const before = await ok('read_console', { vm: 'mcp-agent', limit: 1 });
  const started = await ok('start_vm', { vm: 'mcp-agent' });
  assert.equal(started.vm.state, 'running');
  const ready = await ok('wait_for_console', { vm: 'mcp-agent', pattern: READY_LINE, since: before.nextOffset, timeoutSeconds: 120 });
  assert.equal(ready.matched, READY_LINE);
  assert.ok(ready.offset >= before.nextOffset);

  const uname = await ok('console_execute', { vm: 'mcp-agent', command: 'uname -a', timeoutSeconds: 60 });
  assert.equal(uname.exitCode, 0);
  assert.equal(uname.timedOut, false);
  assert.match(uname.output, /Linux/);

  const sent = await ok('send_console', { vm: 'mcp-agent', text: 'echo mcp-$((6*7))\n' });
  assert.ok(sent.bytes > 0);
  assert.equal((await ok('wait_for_console', { vm: 'mcp-agent', pattern: '/mcp-42\\b/', since: ready.offset, timeoutSeconds: 60 })).matched, 'mcp-42');

  const shot = await call('take_screenshot', { vm: 'mcp-agent' });
  assert.ok(!shot.isError, JSON.stringify(shot.content));
  const image = shot.content.find((c) => c.type === 'image');
  assert.ok(image && image.type === 'image' && image.mimeType === 'image/jpeg');
  assert.equal(Buffer.from(image.data, 'base64').subarray(0, 3).toString('hex'), 'ffd8ff', 'a JPEG');
  assert.equal((shot.structuredContent as any).format, 'jpeg');
  assert.ok((shot.structuredContent as any).width > 0);

  const rt = await ok('vm_runtime', { vm: 'mcp-agent' });
  assert.ok(Number.isInteger(rt.pid) && rt.pid > 0);

  assert.equal((await ok('pause_vm', { vm: 'mcp-agent' })).state, 'paused');
  const wrong = problemOf(await call('pause_vm', { vm: 'mcp-agent' }));
  assert.equal(wrong.code, 'INVALID_STATE');
  assert.equal(wrong.state, 'paused');
  assert.equal((await ok('resume_vm', { vm: 'mcp-agent' })).state, 'running');

  const beforeReset = await ok('read_console', { vm: 'mcp-agent', limit: 1 });
  assert.equal((await ok('restart_vm', { vm: 'mcp-agent', hard: true })).state, 'running');
  await ok('wait_for_console', { vm: 'mcp-agent', pattern: READY_LINE, since: beforeReset.nextOffset, timeoutSeconds: 120 });

  assert.equal((await ok('stop_vm', { vm: 'mcp-agent', timeoutSeconds: 90, force: true })).state, 'stopped');
  assert.equal(problemOf(await call('console_execute', { vm: 'mcp-agent', command: 'true' })).code, 'INVALID_STATE');

  const snap = await ok('create_snapshot', { vm: 'mcp-agent', name: 'clean', description: 'after the first boot' });
  assert.equal(snap.kind, 'disk', 'a stopped VM gets a disk-only snapshot');
  assert.deepEqual((await ok('list_snapshots', { vm: 'mcp-agent' })).snapshots.map((x: any) => x.name), ['clean']);
  const restored = await ok('restore_snapshot', { vm: 'mcp-agent', snapshot: 'clean' });
  assert.equal(restored.snapshot.id, snap.id);
  assert.equal(restored.vm.state, 'stopped');
  assert.equal((await ok('resize_disk', { vm: 'mcp-agent', sizeGB: 2 })).diskGB, 2, 'a disk with snapshots grows');
  assert.deepEqual(await ok('delete_snapshot', { vm: 'mcp-agent', snapshot: 'clean' }), { id: snap.id, name: 'clean', deleted: true });
  assert.equal((await ok('get_suspend_status', { vm: 'mcp-agent' })).suspended, false);
  assert.equal(problemOf(await call('suspend_vm', { vm: 'mcp-agent' })).code, 'INVALID_STATE');
  const bundle = await ok('export_vm', { vm: 'mcp-agent' });
  assert.ok(bundle.bytes > 0 && bundle.path.endsWith('mcp-agent.grove.tar'), JSON.stringify(bundle));
  assert.equal(problemOf(await call('import_vm', { path: 'mcp-agent.grove.tar' })).code, 'CONFLICT', 'the name is taken');
  const copy = await ok('import_vm', { path: 'mcp-agent.grove.tar', name: 'mcp-copy' });
  assert.equal(copy.diskGB, 2);
  assert.equal(problemOf(await call('import_vm', { path: '/etc/passwd' })).code, 'FORBIDDEN_PATH');
  await ok('delete_vm', { vm: 'mcp-copy' });
  assert.deepEqual(await ok('delete_vm', { vm: 'mcp-agent' }), { id: vm.id, name: 'mcp-agent', deleted: true });
  assert.equal(problemOf(await call('get_vm', { vm: vm.id })).code, 'VM_NOT_FOUND');
});
