// Events (SPEC §6) end to end: the real daemon (`bin/grove serve`), a real QEMU guest under TCG, and real
// SSE / WebSocket clients. Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/events.test.js
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE } from '../helpers/guest.js';
import { assertOk, execute, getVm, startReady } from '../helpers/api.js';
import { holdsConnection } from '../helpers/proc.js';
import { SseClient } from '../helpers/sse.js';
import { WsClient } from '../helpers/ws-client.js';

const ENVELOPE_KEYS = new Set(['id', 'type', 'timestamp', 'vmId', 'vmName', 'data']);

const auth = (d: TestDaemon): Record<string, string> => ({ authorization: `Bearer ${d.token}` });
const sseUrl = (d: TestDaemon, q = ''): string => `${d.api}/events${q}`;
const wsUrl = (d: TestDaemon, q = ''): string => `ws://127.0.0.1:${d.port}/api/v1/events${q}`;

/** The burst's end marker: the echo of the command has `$((6*7))`, so only the output matches. */
const BURST = /BURST-42/;

/** A command whose output differs from its echo, so seeing `out` proves the guest ran it. */
const mark = (tag: string): { cmd: string; out: string } => ({ cmd: `echo ${tag}-$((6*7))`, out: `${tag}-42` });

function consoleText(events: any[], vmId: string): string {
  return events.filter((e) => e.type === 'console.output' && e.vmId === vmId).map((e) => e.data.data as string).join('');
}

function ids(events: any[]): number[] {
  return events.map((e) => e.id as number);
}

function assertStrictlyIncreasing(list: number[], what: string): void {
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i]! > list[i - 1]!, `${what}: ids not strictly increasing at ${i}: ${list[i - 1]} then ${list[i]}`);
  }
}

function assertEnvelope(e: any): void {
  assert.equal(typeof e, 'object');
  for (const k of Object.keys(e)) assert.ok(ENVELOPE_KEYS.has(k), `unexpected envelope key '${k}' in ${JSON.stringify(e).slice(0, 200)}`);
  assert.ok(Number.isInteger(e.id) && e.id > 0, `id ${e.id}`);
  assert.equal(typeof e.type, 'string');
  assert.equal(typeof e.timestamp, 'string');
  assert.ok(!Number.isNaN(Date.parse(e.timestamp)) && /^\d{4}-\d\d-\d\dT/.test(e.timestamp), `timestamp ${e.timestamp}`);
  assert.ok(e.data !== null && typeof e.data === 'object' && !Array.isArray(e.data), 'data is an object');
  if (e.type.startsWith('vm.') || e.type === 'console.output') {
    assert.equal(typeof e.vmId, 'string', `${e.type} carries vmId`);
    assert.equal(typeof e.vmName, 'string', `${e.type} carries vmName`);
  }
}

/** Every SSE record's `id:` / `event:` lines agree with the envelope in its `data:`. */
function assertSseRecordsConsistent(c: SseClient): void {
  for (const r of c.records) {
    if (r.event === 'resync' || r.event === 'overflow') continue;
    assert.ok(r.json, `SSE data is JSON: ${r.data.slice(0, 100)}`);
    assert.equal(r.id, String(r.json.id), 'id: line matches the envelope id');
    assert.equal(r.event, r.json.type, 'event: line matches the envelope type');
  }
}

/** Starts the guest, tolerating one left running or paused by an earlier test that failed half-way. */
async function startGuest(d: TestDaemon, vm: string): Promise<void> {
  const { state } = await getVm(d, vm);
  if (state === 'paused') assertOk(await d.call('POST', `/vms/${vm}/resume`), 200, `resume ${vm}`);
  if (state !== 'running' && state !== 'paused') await startReady(d, vm, { timeoutSeconds: 90, acpi: false });
  // The shell prompt comes right after the ready line; execute needs it.
  await execute(d, vm, 'true');
}

describe('events on a real guest (SSE + WebSocket)', () => {
  let d: TestDaemon;
  const open: { close(): void }[] = [];
  const track = <T extends { close(): void }>(c: T): T => { open.push(c); return c; };
  /** The reference: an unfiltered WebSocket connected before anything happened, kept open throughout. */
  let ref: WsClient;
  let vm: any;
  let other: any;

  before(async () => {
    d = await startDaemon();
  });

  after(async () => {
    for (const c of open) { try { c.close(); } catch { /* already closed */ } }
    await d?.cleanup();
  });

  it('delivers the lifecycle over SSE and WebSocket: created, started, console.output, paused, resumed, stopped', async (t) => {
    ref = track(await WsClient.open(wsUrl(d), auth(d)));
    const sse = track(await SseClient.open(sseUrl(d), { headers: auth(d) }));
    assert.equal(sse.status, 200);
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    assert.match(String(sse.headers['cache-control']), /no-cache/);
    // Filters, both transports.
    const sseVmStar = track(await SseClient.open(sseUrl(d, '?types=vm.*'), { headers: auth(d) }));
    const sseTwo = track(await SseClient.open(sseUrl(d, '?types=vm.started,vm.stopped'), { headers: auth(d) }));
    const wsVmStar = track(await WsClient.open(wsUrl(d, '?types=vm.*'), auth(d)));
    const wsTwo = track(await WsClient.open(wsUrl(d, '?types=vm.started,vm.stopped'), auth(d)));
    for (const c of [sseVmStar, sseTwo]) assert.equal(c.status, 200);

    other = await createGuestVm(d, 'ev-other');
    vm = await createGuestVm(d, 'ev-main');
    // ?vm= needs the VM to exist; these replay from the beginning of the log (since=0) so they see vm.created too.
    const sseOne = track(await SseClient.open(sseUrl(d, '?vm=ev-main&since=0'), { headers: auth(d) }));
    const wsOne = track(await WsClient.open(wsUrl(d, `?vm=${vm.id}&since=0`), auth(d)));
    assert.equal(sseOne.status, 200);

    await startGuest(d, 'ev-main');
    assertOk(await d.call('PATCH', '/vms/ev-other', { cpu: 2 }), 200, 'patch ev-other');
    // A burst of ~14 kB of console output.
    assertOk(await d.call('POST', '/vms/ev-main/console', { text: 'seq 1 3000; echo BURST-$((6*7))\n' }), 200, 'burst');
    await ref.until('the burst', () => BURST.test(consoleText(ref.events, vm.id)), 60_000);
    assertOk(await d.call('POST', '/vms/ev-main/pause'), 200, 'pause');
    assertOk(await d.call('POST', '/vms/ev-main/resume'), 200, 'resume');
    await execute(d, 'ev-main', 'true');
    assertOk(await d.call('POST', '/vms/ev-main/stop', { timeoutSeconds: 60 }), 200, 'stop');
    assertOk(await d.call('DELETE', '/vms/ev-other'), 204, 'delete ev-other');

    const isLast = (e: any): boolean => e.type === 'vm.deleted' && e.vmId === other.id;
    const isStopped = (e: any): boolean => e.type === 'vm.stopped' && e.vmId === vm.id;
    const last = await ref.next('vm.deleted of ev-other', isLast);
    await sse.next('vm.deleted (SSE)', isLast);
    await sseVmStar.next('vm.deleted (SSE vm.*)', isLast);
    await wsVmStar.next('vm.deleted (WS vm.*)', isLast);
    await sseTwo.next('vm.stopped (SSE two types)', isStopped);
    await wsTwo.next('vm.stopped (WS two types)', isStopped);
    await sseOne.next('vm.stopped (SSE ?vm)', isStopped);
    await wsOne.next('vm.stopped (WS ?vm)', isStopped);

    const cut = last.id as number;
    const all = ref.events.filter((e) => e.id <= cut);
    const upTo = (c: SseClient | WsClient): any[] => c.events.filter((e) => e.id <= cut);

    // Envelopes, ids, SSE framing.
    for (const e of all) assertEnvelope(e);
    assertStrictlyIncreasing(ids(all), 'reference WebSocket');
    for (const m of ref.messages) assert.equal(typeof m, 'string', 'event messages are text frames');
    for (const m of ref.json) assert.ok(m && !Array.isArray(m) && typeof m.id === 'number', 'one JSON envelope per message');
    for (const c of [sse, sseVmStar, sseTwo, sseOne]) {
      assertSseRecordsConsistent(c);
      assertStrictlyIncreasing(ids(c.events), 'SSE');
      assert.ok(c.comments.some((t) => /connected/.test(t)), 'SSE starts with a comment');
    }

    // The unfiltered SSE client saw exactly what the reference saw.
    assert.deepEqual(ids(upTo(sse)), ids(all));

    // Lifecycle of ev-main, in order, each once.
    const main = all.filter((e) => e.vmId === vm.id && e.type.startsWith('vm.'));
    assert.deepEqual(main.map((e) => e.type), ['vm.created', 'vm.started', 'vm.paused', 'vm.resumed', 'vm.stopped']);
    assert.deepEqual(main.map((e) => e.data.state), ['stopped', 'running', 'paused', 'running', 'stopped']);
    for (const e of main) assert.equal(e.vmName, 'ev-main');
    assert.deepEqual(all.filter((e) => e.vmId === other.id).map((e) => e.type), ['vm.created', 'vm.updated', 'vm.deleted']);

    // console.output: coalesced, contiguous, and the same bytes as the console log.
    const out = all.filter((e) => e.type === 'console.output' && e.vmId === vm.id);
    assert.ok(out.length > 0, 'console.output events arrived');
    for (const e of out) {
      assert.ok(Number.isInteger(e.data.offset) && Number.isInteger(e.data.nextOffset) && e.data.nextOffset > e.data.offset, JSON.stringify(e.data).slice(0, 200));
      assert.equal(typeof e.data.data, 'string');
    }
    for (let i = 1; i < out.length; i++) assert.equal(out[i].data.offset, out[i - 1].data.nextOffset, `console.output ${i} follows on from ${i - 1}`);
    const bytes = out.at(-1).data.nextOffset - out[0].data.offset;
    const text = consoleText(all, vm.id);
    assert.ok(text.includes(READY_LINE) && BURST.test(text), 'boot and burst output are in the events');
    t.diagnostic(`${out.length} console.output events for ${bytes} bytes of console output`);
    assert.ok(out.length * 50 < bytes, `coalesced: ${out.length} console.output events for ${bytes} bytes`);
    const log = assertOk(await d.call('GET', `/vms/ev-main/console?since=${out[0].data.offset}&limit=${bytes}`), 200, 'read console');
    assert.equal(log.offset, out[0].data.offset);
    assert.equal(text, log.data, 'console.output events carry exactly the console log bytes');

    // Filters.
    const star = all.filter((e) => e.type.startsWith('vm.'));
    assert.ok(star.length >= 8);
    assert.deepEqual(ids(upTo(sseVmStar)), ids(star), 'SSE ?types=vm.*');
    assert.deepEqual(ids(upTo(wsVmStar)), ids(star), 'WS ?types=vm.*');
    const two = all.filter((e) => e.type === 'vm.started' || e.type === 'vm.stopped');
    assert.equal(two.length, 2);
    assert.deepEqual(ids(upTo(sseTwo)), ids(two), 'SSE ?types=vm.started,vm.stopped');
    assert.deepEqual(ids(upTo(wsTwo)), ids(two), 'WS ?types=vm.started,vm.stopped');
    const mine = all.filter((e) => e.vmId === vm.id);
    assert.ok(mine.some((e) => e.type === 'console.output'));
    assert.deepEqual(ids(upTo(sseOne)), ids(mine), 'SSE ?vm=<name>');
    assert.deepEqual(ids(upTo(wsOne)), ids(mine), 'WS ?vm=<id>');

    for (const c of [sse, sseVmStar, sseTwo, sseOne, wsVmStar, wsTwo, wsOne]) c.close();
  });

  it('refuses unknown event types (400 problem) and unknown VMs (404) on both transports', async () => {
    for (const q of ['?types=vm.bogus', '?types=bogus.*', '?types=vm.started,nope', `?vm=no-such-vm`]) {
      const want = q.startsWith('?vm') ? 404 : 400;
      const c = await SseClient.open(sseUrl(d, q), { headers: auth(d) });
      assert.equal(c.status, want, `SSE ${q}`);
      assert.match(String(c.headers['content-type']), /^application\/problem\+json/);
      const p = await c.json();
      assert.equal(p.status, want);
      assert.equal(p.code, want === 400 ? 'VALIDATION_FAILED' : 'VM_NOT_FOUND');
      if (want === 400) assert.match(p.detail, /types|type/);

      const w = await WsClient.connect(wsUrl(d, q), auth(d));
      if (w.kind === 'rejected') {
        assert.equal(w.status, want, `WS ${q}`);
      } else {
        assert.equal(w.kind, 'open', `WS ${q}: ${w.kind === 'error' ? w.error.message : ''}`);
        const closed = await (w as { client: WsClient }).client.waitClosed();
        assert.equal(closed.code, 4000 + want, `WS ${q} closes with ${4000 + want}: ${closed.reason}`);
        assert.equal((w as { client: WsClient }).client.events.length, 0);
      }
    }
  });

  it('SSE: reconnecting with Last-Event-ID replays exactly the missed events, then live ones', async () => {
    await startGuest(d, 'ev-main');
    const a = track(await SseClient.open(sseUrl(d), { headers: auth(d) }));
    const m1 = mark('RA');
    await execute(d, 'ev-main', m1.cmd);
    await a.until('RA marker', () => consoleText(a.events, vm.id).includes(m1.out));
    const lastSeen = a.events.at(-1).id as number;
    a.close();

    // Missed while disconnected.
    assertOk(await d.call('POST', '/vms/ev-main/pause'), 200, 'pause');
    assertOk(await d.call('POST', '/vms/ev-main/resume'), 200, 'resume');
    const m2 = mark('RB');
    await execute(d, 'ev-main', m2.cmd);
    await ref.until('RB marker on the reference', () => consoleText(ref.events, vm.id).includes(m2.out));

    const b = track(await SseClient.open(sseUrl(d), { headers: { ...auth(d), 'last-event-id': String(lastSeen) } }));
    assert.equal(b.status, 200);
    await b.until('replayed RB marker', () => consoleText(b.events, vm.id).includes(m2.out));
    // Live, after the replay.
    const m3 = mark('RC');
    await execute(d, 'ev-main', m3.cmd);
    await b.until('live RC marker, caught up with the reference', () =>
      consoleText(b.events, vm.id).includes(m3.out) && b.events.at(-1)?.id === ref.events.at(-1)?.id);

    const expected = ref.events.filter((e) => e.id > lastSeen);
    assert.ok(expected.some((e) => e.type === 'vm.paused') && expected.some((e) => e.type === 'vm.resumed'));
    assert.deepEqual(ids(b.events), ids(expected), 'replay + live = exactly the events after Last-Event-ID');
    assert.deepEqual(b.events.map((e) => e.type), expected.map((e) => e.type));
    assertStrictlyIncreasing(ids(b.events), 'replaying SSE');
    assertSseRecordsConsistent(b);
    b.close();

    // ?since= works for SSE too (e.g. for clients that cannot set headers).
    const c = track(await SseClient.open(sseUrl(d, `?since=${lastSeen}`), { headers: auth(d) }));
    await c.until('since= replay', () => c.events.at(-1)?.id === expected.at(-1).id);
    assert.deepEqual(ids(c.events), ids(expected));
    c.close();
  });

  it('WebSocket: ?since= replays exactly the missed events, then live ones; filters apply to the replay', async () => {
    const a = track(await WsClient.open(wsUrl(d), auth(d)));
    const m1 = mark('WA');
    await execute(d, 'ev-main', m1.cmd);
    await a.until('WA marker', () => consoleText(a.events, vm.id).includes(m1.out));
    const lastSeen = a.events.at(-1).id as number;
    a.close();

    assertOk(await d.call('POST', '/vms/ev-main/pause'), 200, 'pause');
    assertOk(await d.call('POST', '/vms/ev-main/resume'), 200, 'resume');
    const m2 = mark('WB');
    await execute(d, 'ev-main', m2.cmd);
    await ref.until('WB marker on the reference', () => consoleText(ref.events, vm.id).includes(m2.out));

    const b = track(await WsClient.open(wsUrl(d, `?since=${lastSeen}`), auth(d)));
    const bVm = track(await WsClient.open(wsUrl(d, `?since=${lastSeen}&types=vm.*`), auth(d)));
    await b.until('replayed WB marker', () => consoleText(b.events, vm.id).includes(m2.out));
    const m3 = mark('WC');
    await execute(d, 'ev-main', m3.cmd);
    await b.until('live WC marker, caught up with the reference', () =>
      consoleText(b.events, vm.id).includes(m3.out) && b.events.at(-1)?.id === ref.events.at(-1)?.id);

    const expected = ref.events.filter((e) => e.id > lastSeen);
    assert.deepEqual(ids(b.events), ids(expected), 'replay + live = exactly the events after since');
    assertStrictlyIncreasing(ids(b.events), 'replaying WebSocket');
    const expectedVm = expected.filter((e) => e.type.startsWith('vm.'));
    assert.deepEqual(expectedVm.map((e) => e.type), ['vm.paused', 'vm.resumed']);
    await bVm.until('filtered replay', () => bVm.events.length >= expectedVm.length);
    assert.deepEqual(ids(bVm.events), ids(expectedVm), 'filtered replay');
    b.close();
    bVm.close();
  });

  it('carries the guest console output byte for byte in console.output (no duplicated or lost bytes)', async () => {
    await startGuest(d, 'ev-main');
    const c = track(await SseClient.open(sseUrl(d, `?types=console.output&vm=${vm.id}`), { headers: auth(d) }));
    const n = 20000;
    assertOk(await d.call('POST', '/vms/ev-main/console', { text: `seq 1 ${n}; echo SEQ-$((6*7))\n` }), 200, 'seq');
    await c.until('the end of seq', () => /SEQ-42/.test(consoleText(c.events, vm.id)), 120_000);
    const text = consoleText(c.events, vm.id);
    const lines = text.slice(text.indexOf(`seq 1 ${n}`)).split('\r\n').slice(1, n + 1);
    const wrong: string[] = [];
    lines.forEach((l, i) => { if (l !== String(i + 1)) wrong.push(`${JSON.stringify(l)} for ${i + 1}`); });
    // The REST console read agrees with the events (both come from the same log).
    const first = c.events[0].data.offset;
    const total = c.events.at(-1).data.nextOffset - first;
    const rest = assertOk(await d.call('GET', `/vms/ev-main/console?since=${first}&limit=${Math.min(total, 1048576)}`), 200, 'console read');
    assert.equal(rest.data, text.slice(0, rest.data.length));
    c.close();
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${n} lines of \`seq\` output arrived corrupted`);
  });

  it('drops a consumer that stops reading, without slowing the daemon or other consumers', async (t) => {
    // The reference would have to swallow the whole flood; it is not needed from here on.
    ref.close();
    const fast = track(await SseClient.open(sseUrl(d, `?types=console.output&vm=${vm.id}`), { headers: auth(d) }));

    // An SSE consumer that sends its request and then never reads again.
    const slow: Socket = await new Promise((resolve, reject) => {
      const s = connect(d.port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    track({ close: () => slow.destroy() });
    let slowClosed = false;
    let slowBytes = 0;
    slow.on('close', () => { slowClosed = true; });
    slow.on('error', () => undefined);
    const head = new Promise<string>((resolve) => slow.once('data', (c: Buffer) => { slowBytes += c.length; slow.pause(); resolve(c.toString('latin1')); }));
    slow.write(`GET /api/v1/events?types=console.output HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nAuthorization: Bearer ${d.token}\r\nAccept: text/event-stream\r\n\r\n`);
    assert.match(await head, /^HTTP\/1\.1 200/);
    slow.on('data', (c: Buffer) => { slowBytes += c.length; });

    // A WebSocket consumer that stops reading too.
    const slowWs = track(await WsClient.open(wsUrl(d, '?types=console.output'), auth(d)));
    const wsSock = (slowWs.ws as unknown as { _socket: Socket })._socket;
    wsSock.pause();
    const slowPort = slow.localPort!;
    const slowWsPort = wsSock.localPort!;
    assert.ok(holdsConnection(d.proc.pid!, d.port, slowPort), 'the daemon holds the slow SSE connection');
    assert.ok(holdsConnection(d.proc.pid!, d.port, slowWsPort), 'the daemon holds the slow WebSocket connection');

    // Flood: NUL bytes cost 1 byte on the serial line and 6 in JSON ("\u0000"), so the consumers' buffers
    // (8 MiB in the daemon, plus what the kernel holds) fill after ~2 MB of output. Bounded at 8 MB.
    assertOk(await d.call('POST', '/vms/ev-main/console', { text: 'head -c 8000000 /dev/zero; echo FLOOD-$((6*7))\n' }), 200, 'start flood');

    let healthChecks = 0;
    await waitFor('the daemon to drop both slow consumers', async () => {
      // Meanwhile the daemon answers other clients.
      const h = await fetch(`${d.api}/health`, { signal: AbortSignal.timeout(20_000) });
      assert.equal(h.status, 200);
      healthChecks++;
      return !holdsConnection(d.proc.pid!, d.port, slowPort) && !holdsConnection(d.proc.pid!, d.port, slowWsPort);
    }, 150_000);
    // Stop the flood; the normal consumer sees what follows.
    assertOk(await d.call('POST', '/vms/ev-main/console', { keys: ['ctrl-c'] }), 200, 'ctrl-c');
    const after1 = mark('AFTER');
    await execute(d, 'ev-main', after1.cmd, { timeoutSeconds: 60 });
    await fast.until('AFTER marker on the normal consumer', () => consoleText(fast.events, vm.id).includes(after1.out), 60_000);

    // The normal consumer was never dropped and lost nothing: its console.output is contiguous.
    assert.equal(fast.ended, false, 'the normal SSE consumer is still connected');
    const out = fast.events;
    assert.ok(out.length > 50, `the normal consumer received the flood (${out.length} events)`);
    for (let i = 1; i < out.length; i++) assert.equal(out[i].data.offset, out[i - 1].data.nextOffset, `normal consumer: event ${i} follows on`);
    assert.ok(healthChecks > 0);

    // The slow consumers, once they read again, find their connection closed by the server.
    slow.resume();
    wsSock.resume();
    await waitFor('the slow SSE socket to be closed by the server', async () => slowClosed, 60_000);
    await slowWs.waitClosed(60_000);
    const flood = out.at(-1).data.nextOffset - out[0].data.offset;
    t.diagnostic(`flood: ${flood} console bytes in ${out.length} events to the normal consumer; ${healthChecks} health checks meanwhile; the slow SSE socket got ${slowBytes} bytes before its close`);
    assert.ok(slowBytes < 64 * 1024 * 1024, `the slow SSE consumer got a bounded amount (${slowBytes} bytes)`);
    fast.close();
  });

  it('keeps event ids and the log across a daemon restart (replay from an old id still works)', async () => {
    const a = track(await SseClient.open(sseUrl(d, '?types=vm.*'), { headers: auth(d) }));
    assertOk(await d.call('POST', '/vms/ev-main/pause'), 200, 'pause');
    assertOk(await d.call('POST', '/vms/ev-main/resume'), 200, 'resume');
    await a.until('pause + resume', () => a.events.some((e) => e.type === 'vm.resumed'));
    const before = a.events.filter((e) => e.type === 'vm.paused' || e.type === 'vm.resumed');
    const oldId = before[0].id - 1;
    // The stream's opening comment names the latest id.
    const probe = await SseClient.open(sseUrl(d, '?types=vm.deleted'), { headers: auth(d) });
    await probe.until('the opening comment', () => probe.comments.some((c) => /latest event id \d+/.test(c)), 10_000);
    const latest = Number(/latest event id (\d+)/.exec(probe.comments.find((c) => /latest event id/.test(c))!)![1]);
    probe.close();
    assert.ok(latest >= before.at(-1).id, `latest ${latest}`);

    d = await d.restart();
    await waitFor('the daemon to re-adopt the running guest', async () => (await d.call('GET', '/vms/ev-main')).body.state === 'running');
    await a.until('the stream to end with the old daemon', () => a.ended, 10_000);
    a.close();

    const b = track(await SseClient.open(sseUrl(d, '?types=vm.*'), { headers: { ...auth(d), 'last-event-id': String(oldId) } }));
    await b.until('replay of the pre-restart events', () => b.events.length >= before.length);
    assert.deepEqual(b.events.slice(0, before.length), before, 'replayed after restart, byte for byte the same envelopes');
    assertOk(await d.call('POST', '/vms/ev-main/pause'), 200, 'pause after restart');
    const fresh = await b.next('vm.paused after restart', (e) => e.type === 'vm.paused' && e.id > latest);
    assert.ok(fresh.id > latest, `ids continue after a restart (${fresh.id} > ${latest})`);
    assertStrictlyIncreasing(ids(b.events), 'after restart');
    assertOk(await d.call('POST', '/vms/ev-main/force-stop'), 200, 'force-stop');
    b.close();
  });
});

describe('events: retention and resync', () => {
  let d: TestDaemon;
  const open: { close(): void }[] = [];

  before(async () => {
    d = await startDaemon({ args: ['--event-retention', '100'] });
  });

  after(async () => {
    for (const c of open) { try { c.close(); } catch { /* already closed */ } }
    await d?.cleanup();
  });

  it('answers a replay older than the retained log with a resync record first, on both transports', async () => {
    await createGuestVm(d, 'rs');
    // 1 vm.created + 220 vm.updated: more than twice the retention, so the log was pruned.
    for (let i = 0; i < 220; i++) assertOk(await d.call('PATCH', '/vms/rs', { cpu: i % 2 === 0 ? 2 : 1 }), 200, `patch ${i}`);
    const latest = 221;

    const s = await SseClient.open(sseUrl(d), { headers: { ...auth(d), 'last-event-id': '1' } });
    open.push(s);
    assert.equal(s.status, 200);
    await s.until('replay to the latest event', () => s.events.at(-1)?.id === latest);
    assert.equal(s.records[0]!.event, 'resync', `first record is a resync notice, got ${s.records[0]!.event}`);
    const gap = s.records[0]!.json;
    assert.equal(gap.requestedAfter, 1);
    assert.ok(gap.oldestAvailable > 2, JSON.stringify(gap));
    // After the notice: everything still held, gap-free.
    const replayed = ids(s.events);
    assert.equal(replayed[0], gap.oldestAvailable);
    assert.deepEqual(replayed, Array.from({ length: latest - gap.oldestAvailable + 1 }, (_, i) => gap.oldestAvailable + i));
    assert.ok(replayed.length <= 200, `retention bounds the log (${replayed.length} events kept)`);
    assertSseRecordsConsistent(s);
    s.close();

    const w = await WsClient.open(wsUrl(d, '?since=1'), auth(d));
    open.push(w);
    await w.until('replay to the latest event', () => w.events.at(-1)?.id === latest);
    assert.equal(w.json[0].type, 'resync');
    assert.equal(w.json[0].requestedAfter, 1);
    assert.equal(w.events[0].id, w.json[0].oldestAvailable);
    w.close();

    // A replay within the retained log gets no resync notice.
    const t = await SseClient.open(sseUrl(d), { headers: { ...auth(d), 'last-event-id': String(latest - 5) } });
    open.push(t);
    await t.until('5 events', () => t.events.length === 5);
    assert.ok(t.records.every((r) => r.event !== 'resync'));
    assert.deepEqual(ids(t.events), [latest - 4, latest - 3, latest - 2, latest - 1, latest]);
    t.close();
  });
});
