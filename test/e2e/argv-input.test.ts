/**
 * End to end: control characters (NUL, newline, any C0, DEL) are refused at the API in every value that
 * reaches QEMU's or qemu-img's command line — before anything is created — over REST and MCP alike, and
 * the rule is visible in the OpenAPI document.
 * Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/argv-input.test.js
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem } from '../helpers/api.js';
import { guestFiles } from '../helpers/guest.js';

let d: TestDaemon;
let mcp: Client;
const CONTROLS = ['\u0000', '\n', '\r', '\t', '\u001b', '\u007f'];

before(async () => {
  d = await startDaemon();
  mcp = new Client({ name: 'grove-e2e', version: '1' });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
});

after(async () => {
  await mcp?.close();
  await d?.cleanup();
});

function assertNamesField(body: { detail: string }, field: string, what: string): void {
  assert.ok(body.detail.includes(field), `${what}: detail names ${field}: ${body.detail}`);
  assert.match(body.detail, /control characters/, `${what}: detail says why: ${body.detail}`);
}

test('a create with a control character in cmdline, kernel, initrd, iso or image is 400 naming the field; nothing is created', async () => {
  const g = guestFiles();
  const good = { kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB: 128, diskGB: 1 };
  let n = 0;
  for (const c of CONTROLS) {
    for (const [field, value] of [
      ['cmdline', `${g.cmdline}${c}init=/bin/sh`], ['kernel', `vmlinuz${c}`], ['initrd', `init${c}ramfs.gz`], ['iso', `boot${c}.iso`], ['image', `disk${c}.qcow2`],
    ] as const) {
      const body: Record<string, unknown> = { ...good, name: `ctl-${n++}`, [field]: value };
      if (field === 'image') { delete body['kernel']; delete body['initrd']; delete body['cmdline']; }
      const what = `${field} with U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
      const r = await d.call('POST', '/vms', body);
      assertProblem(r, 400, 'VALIDATION_FAILED', what);
      assertNamesField(r.body, `body/${field}`, what);
    }
  }
  assert.deepEqual(assertOk(await d.call('GET', '/vms'), 200, 'list'), [], 'no VM was created');
});

test('a cmdline without control characters is still accepted and boots (spaces, quotes, unicode)', async () => {
  const g = guestFiles();
  const vm = await createGuestVm(d, 'ctl-ok', { cmdline: `${g.cmdline} grove.note="café au lait"` });
  assert.equal(vm.boot.cmdline, `${g.cmdline} grove.note="café au lait"`);
  assertOk(await d.call('DELETE', '/vms/ctl-ok'), 204, 'delete');
});

test('export and import paths with a control character are 400 naming the field', async () => {
  await createGuestVm(d, 'ctl-export');
  for (const c of CONTROLS) {
    const ex = await d.call('POST', '/vms/ctl-export/export', { path: `out${c}.tar` });
    assertProblem(ex, 400, 'VALIDATION_FAILED', 'export path');
    assertNamesField(ex.body, 'body/path', 'export path');
    const im = await d.call('POST', '/vms/import', { path: `in${c}.tar` });
    assertProblem(im, 400, 'VALIDATION_FAILED', 'import path');
    assertNamesField(im.body, 'body/path', 'import path');
  }
});

test('MCP create_vm refuses a cmdline with a newline the same way (a tool error naming the argument)', async () => {
  const g = guestFiles();
  const r = (await mcp.callTool({ name: 'create_vm', arguments: { name: 'ctl-mcp', kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: `${g.cmdline}\ninit=/bin/sh` } })) as CallToolResult;
  assert.equal(r.isError, true, JSON.stringify(r));
  const text = r.content.find((x) => x.type === 'text');
  assert.ok(text && text.type === 'text');
  const p = JSON.parse(text.text) as { code: string; detail: string };
  assert.equal(p.code, 'VALIDATION_FAILED');
  assertNamesField(p, 'arguments/cmdline', 'MCP cmdline');
  assertProblem(await d.call('GET', '/vms/ctl-mcp'), 404, 'VM_NOT_FOUND', 'not created');
});

test('OpenAPI shows the rule: every path and the cmdline carry the no-control-character pattern', async () => {
  const doc = assertOk(await d.call('GET', '/openapi.json'), 200, 'openapi');
  const create = doc.paths['/api/v1/vms'].post.requestBody.content['application/json'].schema;
  const exp = doc.paths['/api/v1/vms/{id}/export'].post.requestBody.content['application/json'].schema;
  const patterns = [
    ...['cmdline', 'kernel', 'initrd', 'iso', 'image'].map((f) => [f, create.properties[f].pattern]),
    ['export path', exp.properties.path.pattern],
  ];
  for (const [what, pattern] of patterns) {
    assert.equal(typeof pattern, 'string', `${what} has a pattern`);
    const re = new RegExp(pattern as string, 'u');
    for (const c of CONTROLS) assert.equal(re.test(`a${c}b`), false, `${what} pattern refuses U+${c.charCodeAt(0).toString(16)}`);
    assert.equal(re.test('console=ttyS0 quiet "é"'), true, `${what} pattern accepts ordinary text`);
  }
});
