// Console hardening at the API: history capped per VM with offsets that stay absolute, waits over it
// bounded, and caller regular expressions on a linear-time engine (no event-loop freeze, clear refusals).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { assertOk, assertProblem, execute, forceStop, startReady } from '../helpers/api.js';
import { createGuestVm, killVmsOf, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE } from '../helpers/guest.js';

const CAP = 64 * 1024;
let d: TestDaemon;
before(async () => { d = await startDaemon({ env: { GROVE_CONSOLE_HISTORY_BYTES: String(CAP) } }); });
after(async () => {
  if (!d) return;
  try { await d.cleanup(); } finally { killVmsOf(d.dataDir); }
});

async function tool(name: string, args: Record<string, unknown>): Promise<{ isError: boolean; body: any }> {
  const r = await fetch(`${d.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
  });
  assert.equal(r.status, 200);
  const { result } = await r.json() as any;
  return { isError: result.isError === true, body: result.isError ? JSON.parse(result.content[0].text) : result.structuredContent };
}

const diskBytes = (file: string) => statSync(file).blocks * 512;

test('console history is capped per VM: old output is let go, offsets stay absolute, reads say where history starts', async () => {
  const vm = await createGuestVm(d, 'chatty');
  await startReady(d, 'chatty', { acpi: false });
  // ~590 KB of numbered lines, well past the 64 KiB cap.
  const r = await execute(d, 'chatty', 'seq 1 100000; echo SEQ-DONE', { timeoutSeconds: 300 });
  assert.equal(r.exitCode, 0);

  const tail = assertOk(await d.call('GET', '/vms/chatty/console?limit=65536'), 200, 'tail');
  assert.ok(tail.historyStart > 500_000, `historyStart ${tail.historyStart}`);
  assert.ok(tail.nextOffset - tail.historyStart <= CAP + 64 * 1024, `kept ${tail.nextOffset - tail.historyStart} bytes`);
  const fromZero = assertOk(await d.call('GET', '/vms/chatty/console?since=0&limit=16'), 200, 'since 0');
  assert.equal(fromZero.offset, fromZero.historyStart, 'a read before the kept history starts where it starts');
  assert.equal(fromZero.historyStart, tail.historyStart);

  // The line numbers around a kept offset are where they were: the offset of line n is fixed by seq.
  // The terminal turns each \n into \r\n.
  const nl = tail.data.includes('\r\n') ? '\r\n' : '\n';
  const offsetOf = (n: number, base: number) => base + Array.from({ length: n - 1 }, (_, i) => String(i + 1).length + nl.length).reduce((a, b) => a + b, 0);
  const marker = tail.data.lastIndexOf(`\n99990${nl}`);
  assert.ok(marker >= 0, 'line 99990 is in the tail');
  const at = tail.offset + Buffer.byteLength(tail.data.slice(0, marker + 1));
  const line1 = at - (offsetOf(99990, 0) - offsetOf(1, 0));
  const again = assertOk(await d.call('GET', `/vms/chatty/console?since=${offsetOf(99000, line1)}&limit=7`), 200, 'by offset');
  assert.match(again.data, /^99000\r?\n/);

  // The space went back too: console.out's blocks are about the cap, not the ~600 KB written.
  const paths = join(d.dataDir, 'vms', vm.id);
  assert.ok(diskBytes(join(paths, 'console.out')) <= CAP + 128 * 1024, `console.out holds ${diskBytes(join(paths, 'console.out'))} bytes`);

  // A wait from offset 0 searches the kept history and finds what is there.
  const seen = await tool('wait_for_console', { vm: 'chatty', pattern: '/^SEQ-DONE/m', since: 0, timeoutSeconds: 30 });
  assert.equal(seen.isError, false, JSON.stringify(seen.body));
  assert.ok(seen.body.offset > tail.historyStart);
  const gone = await tool('wait_for_console', { vm: 'chatty', pattern: '/^1\\r?\\n2\\r?$/m', since: 0, timeoutSeconds: 2 });
  assert.equal(gone.body.code, 'TIMEOUT', 'lines let go are not searched');

  // Stopped, and after the next boot: the history keeps its offsets and its cap.
  await forceStop(d, 'chatty');
  const stopped = assertOk(await d.call('GET', `/vms/chatty/console?since=${offsetOf(99000, line1)}&limit=7`), 200, 'stopped');
  assert.equal(stopped.data, again.data);
  const stoppedWait = await tool('wait_for_console', { vm: 'chatty', pattern: 'SEQ-DONE', since: 0, timeoutSeconds: 5 });
  assert.equal(stoppedWait.body.offset, seen.body.offset);
  await startReady(d, 'chatty', { acpi: false });
  const next = assertOk(await d.call('GET', `/vms/chatty/console?since=${offsetOf(99000, line1)}&limit=7`), 200, 'next boot');
  assert.equal(next.data, again.data);
  assert.ok(diskBytes(join(paths, 'console.history')) <= CAP + 128 * 1024, `console.history holds ${diskBytes(join(paths, 'console.history'))} bytes`);
  await forceStop(d, 'chatty');
});

test('caller regular expressions: a backtracking bomb is just a pattern that does not match; backreferences are refused', async () => {
  await createGuestVm(d, 'regex');
  await startReady(d, 'regex', { acpi: false });
  // The shell echoes the line, then says it is no command: 28 a's and a b on the console.
  assertOk(await d.call('POST', '/vms/regex/console', { text: `${'a'.repeat(28)}b\n` }), 200, 'type');
  // Once the shell has answered, the console no longer ends in the a's being echoed.
  assert.equal((await tool('wait_for_console', { vm: 'regex', pattern: `${'a'.repeat(28)}b: not found`, since: 0, timeoutSeconds: 30 })).isError, false);
  const bomb = await tool('wait_for_console', { vm: 'regex', pattern: '/(a+)+$/', since: 0, timeoutSeconds: 3 });
  assert.equal(bomb.body.code, 'TIMEOUT');
  const found = await tool('wait_for_console', { vm: 'regex', pattern: '/(a+)+b/', since: 0, timeoutSeconds: 10 });
  assert.equal(found.body.matched, `${'a'.repeat(28)}b`);
  assert.equal((await tool('wait_for_console', { vm: 'regex', pattern: `/${READY_LINE}/`, since: 0, timeoutSeconds: 10 })).isError, false);

  const backref = await tool('wait_for_console', { vm: 'regex', pattern: '/(a)\\1/', since: 0, timeoutSeconds: 3 });
  assert.deepEqual([backref.body.code, backref.body.status, backref.body.field], ['UNSUPPORTED_PATTERN', 400, 'waitFor.console']);
  await forceStop(d, 'regex');
  const start = await d.call('POST', '/vms/regex/start', { waitFor: { console: '/login(?=:)/', timeoutSeconds: 5 } });
  assertProblem(start, 400, 'UNSUPPORTED_PATTERN');
  assert.equal((await d.call('GET', '/vms/regex')).body.state, 'stopped', 'refused before starting');
});
