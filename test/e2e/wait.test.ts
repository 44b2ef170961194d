/**
 * End to end for the server-side wait: the real daemon, QEMU (TCG) and the test guest with its real
 * qemu-ga. Every condition kind, any and all, start's `waitFor.until`, a port the guest opens 5 s after the
 * wait began, a VM force-stopped while waited on, timeouts, bad input, and the MCP and CLI faces.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem, sleep, waitAcpiReady } from '../helpers/api.js';
import { READY_LINE, REPO_ROOT } from '../helpers/guest.js';
import { runCommand } from '../helpers/run.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
  await createGuestVm(d, 'w');
});
after(async () => { await d?.cleanup(); });

function assertTimeout(r: { status: number; body: any }): void {
  assert.equal(r.status, 504, JSON.stringify(r.body));
  assert.equal(r.body.code, 'TIMEOUT');
}

const wait = (body: unknown, vm = 'w') => d.call('POST', `/vms/${vm}/wait`, body);
const exec = async (command: string, vm = 'w') => assertOk(await d.call('POST', `/vms/${vm}/exec`, { command }), 200, `exec ${command}`);
/** Runs in the guest, detached: the exec answers at once and the command goes on in the background. */
const later = (seconds: number, command: string, vm = 'w') => exec(`(sleep ${seconds}; ${command}) </dev/null >/dev/null 2>&1 &`, vm);

test('start waitFor.until: the ready line and the agent, both (mode all), with evidence', async () => {
  const r = assertOk(await d.call('POST', '/vms/w/start', { waitFor: { until: [{ console: READY_LINE }, { agent: true }], mode: 'all', timeoutSeconds: 120 } }), 200, 'start');
  assert.equal(r.vm.state, 'running');
  assert.equal(r.waited.mode, 'all');
  assert.deepEqual(r.waited.matched.map((m: any) => m.kind).sort(), ['agent', 'console']);
  const console = r.waited.matched.find((m: any) => m.kind === 'console');
  assert.match(console.evidence, new RegExp(`"${READY_LINE}" at console offset \\d+`));
  const agent = r.waited.matched.find((m: any) => m.kind === 'agent');
  assert.match(agent.evidence, /7\.2\.22/);
  assert.ok(Date.parse(agent.at) > 0);
  await waitAcpiReady(d, 'w');
});

test('agent and state: already true, answered at once', async () => {
  const r = assertOk(await wait({ until: [{ agent: true }] }), 200, 'wait agent');
  assert.equal(r.matched.length, 1);
  assert.equal(r.matched[0].kind, 'agent');
  const s = assertOk(await wait({ until: [{ state: 'running' }] }), 200, 'wait state');
  assert.equal(s.matched[0].evidence, 'state running');
});

test('ip: the guest address through the agent', async () => {
  const r = assertOk(await wait({ until: [{ ip: true }], timeoutSeconds: 60 }), 200, 'wait ip');
  assert.equal(r.matched[0].kind, 'ip');
  assert.equal(r.matched[0].evidence, '10.0.2.15');
});

test('port: a server the guest starts 5 s after the wait began', async () => {
  assertTimeout(await wait({ until: [{ port: 7777 }], timeoutSeconds: 1 }));
  await later(5, 'exec nc -ll -p 7777 -e /bin/cat');
  const r = assertOk(await wait({ until: [{ port: 7777 }], timeoutSeconds: 60 }), 200, 'wait port');
  assert.equal(r.matched[0].kind, 'port');
  assert.match(r.matched[0].evidence, /^tcp6? socket listening on [0-9A-F]+:7777$/);
  assert.ok(r.matched[0].elapsedMs >= 3000, `matched after ${r.matched[0].elapsedMs} ms: the server was not up before`);
});

test('file and command: both come true later; mode all lists them in the order met', async () => {
  await later(1, 'touch /tmp/w-file');
  await later(3, 'echo done >/tmp/w-cmd');
  const r = assertOk(await wait({ until: [{ command: 'cat /tmp/w-cmd' }, { file: '/tmp/w-file' }], mode: 'all', timeoutSeconds: 60 }), 200, 'wait all');
  assert.deepEqual(r.matched.map((m: any) => m.kind), ['file', 'command']);
  assert.deepEqual(r.matched.map((m: any) => m.index), [1, 0]);
  assert.equal(r.matched[0].evidence, '/tmp/w-file exists');
  assert.equal(r.matched[1].evidence, 'exit 0: done');
});

test('console: text typed after the wait began; mode any answers with the first condition met', async () => {
  const pending = wait({ until: [{ file: '/never/there' }, { console: '/w-mark-(\\d+)/' }], timeoutSeconds: 60 });
  await sleep(500);
  assert.equal((await d.call('POST', '/vms/w/console', { text: 'echo w-mark-$((40 + 2))\n' })).status, 200);
  const r = assertOk(await pending, 200, 'wait console');
  assert.equal(r.mode, 'any');
  assert.equal(r.matched.length, 1);
  assert.equal(r.matched[0].index, 1);
  // The typed line echoes `w-mark-$((40 + 2))`, which does not match; the output line does.
  assert.match(r.matched[0].evidence, /^"w-mark-42" at console offset \d+$/);
});

test('state and event: a pause and a resume made while waiting', async () => {
  const paused = wait({ until: [{ state: 'paused' }], timeoutSeconds: 30 });
  const resumed = wait({ until: [{ event: 'vm.resumed' }], timeoutSeconds: 30 });
  await sleep(300);
  assertOk(await d.call('POST', '/vms/w/pause', {}), 200, 'pause');
  const p = assertOk(await paused, 200, 'wait paused');
  assert.match(p.matched[0].evidence, /^state paused \(event #\d+ vm\.paused\)$/);
  assertOk(await d.call('POST', '/vms/w/resume', {}), 200, 'resume');
  const e = assertOk(await resumed, 200, 'wait event');
  assert.match(e.matched[0].evidence, /^event #\d+ vm\.resumed at /);
});

test('timeout: 504 naming what is still pending, with the last reason', async () => {
  const r = await wait({ until: [{ file: '/no/such/file' }, { port: 1 }], mode: 'all', timeoutSeconds: 2 });
  assertTimeout(r);
  assert.deepEqual(r.body.pending, [0, 1]);
  assert.match(r.body.detail, /file \/no\/such\/file \(last: .*No such file/);
  assert.match(r.body.detail, /port 1 \(last: nothing listens on TCP port 1/);
});

test('bad input is refused before waiting', async () => {
  assertProblem(await wait({ until: [] }), 400, 'VALIDATION_FAILED');
  assertProblem(await wait({ until: [{ port: 22, agent: true }] }), 400, 'VALIDATION_FAILED');
  assertProblem(await wait({ until: [{ event: 'vm.exploded' }] }), 400, 'VALIDATION_FAILED');
  assertProblem(await wait({ until: [{ console: '/(unclosed/' }] }), 400, 'VALIDATION_FAILED');
  assertProblem(await wait({ until: [{ agent: true }], mode: 'some' }), 400, 'VALIDATION_FAILED');
  assertProblem(await wait({ until: [{ agent: true }], extra: 1 }), 400, 'VALIDATION_FAILED');
  assertProblem(await wait({ until: [{ agent: true }] }, 'nope'), 404, 'VM_NOT_FOUND');
});

test('MCP wait_until and CLI grove wait: the same wait', async () => {
  const c = new Client({ name: 'wait-test', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
  try {
    const r: any = await c.callTool({ name: 'wait_until', arguments: { vm: 'w', until: [{ port: 7777 }, { agent: true }], mode: 'all', timeoutSeconds: 30 } });
    assert.equal(r.isError, undefined);
    assert.deepEqual(r.structuredContent.matched.map((m: any) => m.kind).sort(), ['agent', 'port']);
  } finally {
    await c.close();
  }
  const env = { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token };
  const cli = await runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), 'wait', 'w', '--port', '7777', '--agent', '--all', '--timeout', '30'], { env });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^port +after \d+\.\d s: tcp6? socket listening on [0-9A-F]+:7777$/m);
  assert.match(cli.stdout, /^agent +after/m);
  const late = await runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), 'wait', 'w', '--file', '/no/such', '--timeout', '1'], { env });
  assert.equal(late.code, 124, late.stderr);
});

test('a VM force-stopped while waited on ends the wait at once, with the reason', async () => {
  const started = Date.now();
  const pending = wait({ until: [{ file: '/never/there' }, { console: 'never-printed' }], timeoutSeconds: 300 });
  await sleep(1000);
  assertOk(await d.call('POST', '/vms/w/force-stop', {}), 200, 'force-stop');
  const r = await pending;
  assertProblem(r, 409, 'INVALID_STATE');
  assert.match(r.body.detail, /^VM 'w' stopped: forced while waiting for file \/never\/there, console never-printed$/);
  assert.equal(r.body.state, 'stopped');
  assert.ok(Date.now() - started < 60_000, 'answered long before its timeout');
  // A stopped VM: a guest condition is refused at once; a state one waits (and can be met).
  assertProblem(await wait({ until: [{ agent: true }] }), 409, 'INVALID_STATE');
  const s = assertOk(await wait({ until: [{ state: 'stopped' }], timeoutSeconds: 5 }), 200, 'state stopped');
  assert.equal(s.matched[0].kind, 'state');
});
