/**
 * End to end for the screen as a device: the real daemon, QEMU (TCG) and the test guest. The VNC
 * WebSocket is spoken to with a plain RFB client; keyboard input is read back raw from the guest's VGA
 * text console (tty1) and pointer input from the virtio tablet's evdev node, both through the guest agent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem, startReady } from '../helpers/api.js';
import { WsClient } from '../helpers/ws-client.js';
import { RfbClient } from '../helpers/rfb-client.js';

let d: TestDaemon;
let vmId: string;
before(async () => {
  d = await startDaemon();
  vmId = (await createGuestVm(d, 'scr')).id;
  await createGuestVm(d, 'scr-off');
  await startReady(d, 'scr', { acpi: false });
  await waitFor('the guest agent', async () => (await d.call('GET', '/vms/scr')).body.agent?.connected === true, 90_000);
});
after(async () => { await d?.cleanup(); });

const wsUrl = (vm: string): string => `${d.url.replace('http', 'ws')}/api/v1/vms/${vm}/vnc`;
const auth = (): Record<string, string> => ({ authorization: `Bearer ${d.token}` });
const input = (body: unknown, vm = 'scr') => d.call('POST', `/vms/${vm}/input`, body);
async function sh(command: string): Promise<string> {
  const r = assertOk(await d.call('POST', '/vms/scr/exec', { command, timeoutSeconds: 30 }), 200, `exec ${command}`);
  assert.equal(r.exitCode, 0, `exec ${command}: ${JSON.stringify(r)}`);
  return r.stdout as string;
}
async function guestFile(path: string): Promise<Buffer> {
  const r = await fetch(`${d.api}/vms/scr/files/content?path=${encodeURIComponent(path)}`, { headers: auth() });
  assert.equal(r.status, 200, `download ${path}`);
  return Buffer.from(await r.arrayBuffer());
}
/** Server-side ends of connections to the VM's VNC socket (the listening socket itself excluded). */
function vncConnections(): number {
  const sock = join(d.dataDir, 'vms', vmId, 'vnc.sock');
  return readFileSync('/proc/net/unix', 'utf8').split('\n').filter((l) => l.endsWith(` ${sock}`)).length - 1;
}

test('VNC over the WebSocket: RFB handshake, security None, ServerInit with the screen size', async () => {
  const shot = assertOk(await d.call('GET', '/vms/scr/screenshot', undefined, { accept: 'application/json' }), 200, 'screenshot');
  const rfb = await RfbClient.overWebSocket(wsUrl('scr'), auth());
  const init = await rfb.handshake();
  assert.equal(init.version, 'RFB 003.008\n');
  assert.deepEqual(init.securityTypes, [1]);
  assert.equal(init.width, shot.width);
  assert.equal(init.height, shot.height);
  assert.equal(init.bitsPerPixel, 32);
  rfb.requestUpdate(false);
  const rects = await rfb.nextUpdate();
  assert.ok(rects.some((r) => r.encoding === 0 && r.w > 0 && r.h > 0), JSON.stringify(rects));
  rfb.close();
});

test('several viewers at once; a viewer that leaves frees its connection', async () => {
  await waitFor('no VNC connections left', async () => vncConnections() === 0, 10_000);
  const a = await RfbClient.overWebSocket(wsUrl('scr'), auth());
  const b = await RfbClient.overWebSocket(wsUrl(vmId), auth());
  await Promise.all([a.handshake(), b.handshake()]);
  assert.equal(vncConnections(), 2);
  a.close();
  await waitFor('one VNC connection left', async () => vncConnections() === 1, 10_000);
  // The remaining viewer still gets the screen.
  b.requestUpdate(false);
  assert.ok((await b.nextUpdate()).length > 0);
  b.close();
  await waitFor('no VNC connections left', async () => vncConnections() === 0, 10_000);
});

test('the VNC WebSocket is refused without a token, from a foreign Origin, for a VM that is not running', async () => {
  const noAuth = await WsClient.connect(wsUrl('scr'));
  assert.equal(noAuth.kind === 'rejected' && noAuth.status, 401);
  const foreign = await WsClient.connect(wsUrl('scr'), { ...auth(), origin: 'http://evil.example' });
  assert.equal(foreign.kind === 'rejected' && foreign.status, 403);
  const stopped = await WsClient.connect(wsUrl('scr-off'), auth());
  assert.equal(stopped.kind, 'rejected');
  if (stopped.kind !== 'rejected') return;
  assert.equal(stopped.status, 409);
  assert.equal(JSON.parse(stopped.body).code, 'INVALID_STATE');
  const missing = await WsClient.connect(wsUrl('nope'), auth());
  assert.equal(missing.kind === 'rejected' && missing.status, 404);
  // The daemon's own origin is fine.
  const own = await RfbClient.overWebSocket(wsUrl('scr'), { ...auth(), origin: d.url });
  assert.equal((await own.handshake()).version, 'RFB 003.008\n');
  own.close();
  // Plain HTTP gets a problem, not a hang.
  assertProblem(await d.call('GET', '/vms/scr/vnc'), 426);
});

/**
 * Starts a raw reader of tty1 (the VGA console's keyboard) appending to /tmp/typed. The stty runs on the
 * reader's own open of tty1: a VT resets its settings when the last holder closes it.
 */
async function readTty1(): Promise<void> {
  await sh(": >/tmp/typed && (sh -c 'stty raw -echo && exec cat' </dev/tty1 >>/tmp/typed 2>/dev/null &)");
}
/** Runs `fn` with a reader on tty1, ended afterwards (each test stands alone). */
async function withTty1(fn: () => Promise<void>): Promise<void> {
  await readTty1();
  try {
    await fn();
  } finally {
    await sh('pkill -x cat; true');
  }
}
async function typedBytes(length: number): Promise<Buffer> {
  let got: Buffer = Buffer.alloc(0);
  await waitFor(`${length} bytes typed on tty1`, async () => { got = await guestFile('/tmp/typed'); return got.length >= length; }, 20_000)
    .catch((e: unknown) => { throw new Error(`${String(e)}; got ${JSON.stringify(got.toString('latin1'))}`); });
  await sh(': >/tmp/typed');
  return got;
}

test('typed text arrives in the guest as typed: US layout, shift states, newline as enter', () => withTty1(async () => {
  const text = 'Hello, World! ~`1@#$%^&*()_+-=[]{}|\\;:\'",.<>/? az AZ 09\n';
  const r = assertOk(await input({ text }), 200, 'type');
  assert.equal(r.events, text.length);
  assert.equal((await typedBytes(text.length)).toString('latin1'), text.replace('\n', '\r'));
}));

test('a long text arrives whole (more keys than QEMU queues at once), and a second request waits its turn', () => withTty1(async () => {
  const long = 'The Quick Brown Fox Jumps Over The Lazy Dog! '.repeat(5);
  assert.equal(assertOk(await input({ text: long }), 200, 'long text').events, long.length);
  assert.equal((await typedBytes(long.length)).toString('latin1'), long);
  const first = input({ text: 'a'.repeat(40) });
  await waitFor('the first text to begin arriving', async () => (await guestFile('/tmp/typed')).length > 0, 20_000);
  const second = input({ text: 'b'.repeat(10) });
  assertOk(await first, 200, 'first');
  assertOk(await second, 200, 'second');
  assert.equal((await typedBytes(50)).toString('latin1'), `${'a'.repeat(40)}${'b'.repeat(10)}`);
}));

test('keys with modifiers: shift, ctrl-c, ctrl-d, alt, and named keys', () => withTty1(async () => {
  const r = assertOk(await input({ keys: ['shift-a', 'ctrl-c', 'ctrl-d', 'alt-x', 'tab', 'enter', 'escape', 'up', 'minus', 'ctrl--', 'Shift-Slash'] }), 200, 'keys');
  assert.equal(r.events, 11);
  const expected = 'A\x03\x04\x1bx\t\r\x1b\x1b[A-\x1f?';
  assert.equal((await typedBytes(expected.length)).toString('latin1'), expected);
}));

/** The virtio tablet's events: {type, code, value} from 24-byte struct input_event records. */
async function tabletEvents(file: string): Promise<{ type: number; code: number; value: number }[]> {
  const b = await guestFile(file);
  const out = [];
  for (let o = 0; o + 24 <= b.length; o += 24) out.push({ type: b.readUInt16LE(o + 16), code: b.readUInt16LE(o + 18), value: b.readInt32LE(o + 20) });
  return out;
}
const EV_KEY = 1, EV_REL = 2, EV_ABS = 3, BTN_LEFT = 0x110, BTN_RIGHT = 0x111, REL_WHEEL = 8;

test('mouse input reaches the absolute pointer at the right coordinates, with its buttons and the wheel', async () => {
  const dev = (await sh('for e in /sys/class/input/event*; do [ "$(cat $e/device/name)" = "QEMU Virtio Tablet" ] && echo ${e##*/}; done; true')).trim();
  assert.match(dev, /^event\d+$/);
  await sh(`: >/tmp/ev && (cat /dev/input/${dev} >>/tmp/ev 2>/dev/null </dev/null &)`);
  const click = assertOk(await input({ mouse: { x: 100, y: 50 } }), 200, 'click');
  const { width, height } = click.screen;
  const x = Math.floor((100 * 32767) / (width - 1));
  const y = Math.floor((50 * 32767) / (height - 1));
  assertOk(await input({ mouse: { x: width - 1, y: height - 1, button: 'right', action: 'click' } }), 200, 'right click');
  assertOk(await input({ scroll: { direction: 'down', clicks: 2 } }), 200, 'scroll');
  let evs: { type: number; code: number; value: number }[] = [];
  await waitFor('the tablet events', async () => { evs = await tabletEvents('/tmp/ev'); return evs.filter((e) => e.type === EV_REL).length >= 2; }, 20_000)
    .catch((e: unknown) => { throw new Error(`${String(e)}; got ${JSON.stringify(evs)}`); });
  const meaningful = evs.filter((e) => e.type !== 0).map((e) => [e.type, e.code, e.value]);
  assert.deepEqual(meaningful, [
    [EV_ABS, 0, x], [EV_ABS, 1, y], [EV_KEY, BTN_LEFT, 1], [EV_KEY, BTN_LEFT, 0],
    [EV_ABS, 0, 32767], [EV_ABS, 1, 32767], [EV_KEY, BTN_RIGHT, 1], [EV_KEY, BTN_RIGHT, 0],
    [EV_REL, REL_WHEEL, -1], [EV_REL, REL_WHEEL, -1],
  ]);
  await sh('pkill -x cat; true');
});

test('input is validated: unknown keys list the valid ones, non-US text, off-screen positions, one kind at a time', async () => {
  const unknown = await input({ keys: ['ctrl-foo'] });
  assertProblem(unknown, 400, 'VALIDATION_FAILED');
  assert.match(unknown.body.detail, /unknown key 'foo'.*enter.*pagedown.*modifiers.*ctrl/);
  const accents = await input({ text: 'café ü' });
  assertProblem(accents, 400, 'VALIDATION_FAILED');
  assert.match(accents.body.detail, /"é", "ü"/);
  assertProblem(await input({ mouse: { x: 5000, y: 1 } }), 400, 'VALIDATION_FAILED');
  assertProblem(await input({ keys: ['a'], text: 'a' }), 400, 'VALIDATION_FAILED');
  assertProblem(await input({ mouse: { x: 1, y: 1, speed: 3 } }), 400, 'VALIDATION_FAILED');
  assertProblem(await input({ scroll: { direction: 'down', x: 3 } }), 400, 'VALIDATION_FAILED');
  assertProblem(await input({}), 400, 'VALIDATION_FAILED');
  const off = await input({ keys: ['enter'] }, 'scr-off');
  assertProblem(off, 409, 'INVALID_STATE');
  assert.equal(off.body.state, 'stopped');
});

test('screenshots scale down for agents: ?scale= and ?maxWidth=', async () => {
  const full = assertOk(await d.call('GET', '/vms/scr/screenshot', undefined, { accept: 'application/json' }), 200, 'full');
  const half = assertOk(await d.call('GET', '/vms/scr/screenshot?scale=0.5&format=png', undefined, { accept: 'application/json' }), 200, 'half');
  assert.deepEqual([half.width, half.height], [Math.round(full.width / 2), Math.round(full.height / 2)]);
  const narrow = assertOk(await d.call('GET', '/vms/scr/screenshot?maxWidth=360', undefined, { accept: 'application/json' }), 200, 'narrow');
  assert.deepEqual([narrow.width, narrow.height], [360, Math.round((full.height * 360) / full.width)]);
  const wide = assertOk(await d.call('GET', `/vms/scr/screenshot?maxWidth=${full.width * 2}`, undefined, { accept: 'application/json' }), 200, 'no upscale');
  assert.equal(wide.width, full.width);
  assertProblem(await d.call('GET', '/vms/scr/screenshot?scale=2'), 400, 'VALIDATION_FAILED');
});

async function mcpCall(name: string, args: Record<string, unknown>): Promise<any> {
  const r = await fetch(`${d.url}/mcp`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as any).result;
}

test('MCP: type_text, send_keys, mouse_click, mouse_move and a shrunk take_screenshot (see, act, see)', async () => {
  await withTty1(async () => {
    const typed = await mcpCall('type_text', { vm: 'scr', text: 'Mcp!' });
    assert.equal(typed.isError, undefined, JSON.stringify(typed));
    assert.deepEqual(typed.structuredContent, { events: 4 });
    assert.deepEqual((await mcpCall('send_keys', { vm: 'scr', keys: ['ctrl-c', 'enter'] })).structuredContent, { events: 2 });
    assert.equal((await typedBytes(6)).toString('latin1'), 'Mcp!\x03\r');
  });
  const click = await mcpCall('mouse_click', { vm: 'scr', x: 10, y: 10, button: 'right', doubleClick: true });
  assert.equal(click.structuredContent.events, 6);
  assert.equal((await mcpCall('mouse_move', { vm: 'scr', x: 1, y: 2 })).structuredContent.events, 2);
  const bad = await mcpCall('send_keys', { vm: 'scr', keys: ['ctrl-nope'] });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /VALIDATION_FAILED/);
  const shot = await mcpCall('take_screenshot', { vm: 'scr', maxWidth: 200 });
  assert.equal(shot.structuredContent.width, 200);
  assert.equal(shot.content.find((c: any) => c.type === 'image').mimeType, 'image/jpeg');
});

test('the screen survives suspend and resume, and a daemon restart (re-adoption)', async () => {
  assertOk(await d.call('POST', '/vms/scr/suspend'), 200, 'suspend');
  assertOk(await d.call('POST', '/vms/scr/start'), 200, 'resume');
  let rfb = await RfbClient.overWebSocket(wsUrl('scr'), auth());
  assert.equal((await rfb.handshake()).version, 'RFB 003.008\n');
  rfb.close();
  d = await d.restart();
  rfb = await RfbClient.overWebSocket(wsUrl('scr'), auth());
  assert.equal((await rfb.handshake()).bitsPerPixel, 32);
  rfb.close();
  assert.equal(assertOk(await input({ mouse: { x: 3, y: 3, action: 'move' } }), 200, 'input after re-adoption').events, 2);
});

test('a viewer is disconnected when the VM stops', async () => {
  const rfb = await RfbClient.overWebSocket(wsUrl('scr'), auth());
  await rfb.handshake();
  assertOk(await d.call('POST', '/vms/scr/force-stop'), 200, 'force-stop');
  await waitFor('the viewer to be closed', async () => rfb.closed, 15_000);
});
