/**
 * End to end for the guest agent: the real daemon, QEMU (TCG) and the test guest running Debian's real
 * qemu-ga on the virtio-serial channel. Exec, addresses, OS facts, files, the agent's events and status,
 * and what happens without an agent, after it is killed, and once the VM stops.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createGuestVm, freePort, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem, execute, forceStop, getVm, rawCall, startReady } from '../helpers/api.js';
import { guestFiles } from '../helpers/guest.js';
import { latestEventId, readEvents, waitForEvent } from '../helpers/events.js';

let d: TestDaemon;
let forwardPort: number;
before(async () => {
  d = await startDaemon();
  forwardPort = await freePort();
  await createGuestVm(d, 'ag', { network: { mode: 'user', portForwards: [{ host: forwardPort, guest: 22 }] } });
});
after(async () => { await d?.cleanup(); });

const exec = (body: unknown, vm = 'ag') => d.call('POST', `/vms/${vm}/exec`, body);
const run = async (body: unknown, vm = 'ag'): Promise<any> => assertOk(await exec(body, vm), 200, `exec ${JSON.stringify(body)}`);
const q = (path: string) => encodeURIComponent(path);

async function upload(path: string, data: Buffer, query = ''): Promise<ReturnType<typeof rawCall>> {
  return rawCall(d, 'PUT', `/vms/ag/files/content?path=${q(path)}${query}`, { body: data, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 120_000 });
}

async function download(path: string): Promise<{ status: number; data: Buffer; body: any }> {
  const r = await fetch(`${d.api}/vms/ag/files/content?path=${q(path)}`, { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(120_000) });
  const data = Buffer.from(await r.arrayBuffer());
  let body: any = null;
  try { body = JSON.parse(data.toString('utf8')); } catch { /* bytes */ }
  return { status: r.status, data, body };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the agent connects after boot: event, VM details and list say so', async () => {
  const since = await latestEventId(d);
  await startReady(d, 'ag', { acpi: false });
  const ev = await waitForEvent(d, (e) => e.type === 'agent.connected' && e.vmName === 'ag', { since, timeoutMs: 60_000 });
  assert.equal(ev.data.agent.connected, true);
  assert.equal(ev.data.agent.version, '7.2.22');
  const vm = await getVm(d, 'ag');
  assert.deepEqual(vm.agent, { connected: true, version: '7.2.22', os: 'Grove test guest (busybox 1.35.0)' });
  const list = assertOk(await d.call('GET', '/vms'), 200, 'list');
  assert.deepEqual(list.find((v: any) => v.name === 'ag').agent, vm.agent);
});

test('exec: exit code, stdout and stderr apart, argv as given, command through sh', async () => {
  const r = await run({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
  assert.equal(r.exitCode, 3);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.stdoutEncoding, 'utf8');
  assert.equal(r.truncated, false);
  assert.equal(r.timedOut, false);
  assert.ok(Number.isInteger(r.durationMs));
  // argv words reach the program untouched: no shell in between.
  const words = ['a b', '$(id)', '"q"', "it's", '*'];
  assert.equal((await run({ argv: ['printf', '%s|', ...words] })).stdout, `${words.join('|')}|`);
  assert.equal((await run({ command: 'echo $((6 * 7)) | tr 4 X' })).stdout, 'X2\n');
});

test('exec: stdin (text and binary), env, cwd', async () => {
  assert.equal((await run({ command: 'cat', stdin: 'hello\nworld' })).stdout, 'hello\nworld');
  const bytes = Buffer.from([0, 255, 1, 254, 10, 13]);
  const r = await run({ argv: ['od', '-An', '-tx1'], stdin: bytes.toString('base64'), stdinEncoding: 'base64' });
  assert.equal(r.stdout.trim().replace(/\s+/g, ' '), '00 ff 01 fe 0a 0d');
  const env = await run({ argv: ['sh', '-c', 'echo "$GREETING|$OTHER|$PATH"'], env: { GREETING: 'hi; $(touch /tmp/pwned) `x`', OTHER: '' } });
  assert.match(env.stdout, /^hi; \$\(touch \/tmp\/pwned\) `x`\|\|.*\/bin/);
  assert.equal((await run({ command: 'test -e /tmp/pwned; echo $?' })).stdout, '1\n');
  assert.equal((await run({ command: 'pwd', cwd: '/mnt/disk' })).stdout, '/mnt/disk\n');
  assert.equal((await run({ argv: ['pwd'], cwd: '/proc/self' })).stdout.startsWith('/proc/'), true);
  const missing = await run({ argv: ['pwd'], cwd: '/no/such/dir' });
  assert.equal(missing.exitCode, 125);
  assert.match(missing.stderr, /no\/such\/dir/);
});

test('exec: binary output comes as base64, long output is cut with a marker', async () => {
  const bin = await run({ command: "printf '\\377\\376\\000A'; printf 'text' >&2" });
  assert.equal(bin.stdoutEncoding, 'base64');
  assert.deepEqual(Buffer.from(bin.stdout, 'base64'), Buffer.from([0xff, 0xfe, 0x00, 0x41]));
  assert.equal(bin.stderrEncoding, 'utf8');
  assert.equal(bin.stderr, 'text');
  const long = await run({ command: 'head -c 200000 /dev/zero | tr "\\000" a', maxOutputBytes: 1000 });
  assert.equal(long.truncated, true);
  assert.equal(long.stdout, 'a'.repeat(1000));
  assert.equal(long.exitCode, 0);
});

test('exec: a timeout kills the command and everything it started', async () => {
  const r = await run({ command: 'sleep 300 & echo $! > /tmp/child; echo started; sleep 301', timeoutSeconds: 2 });
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, null);
  assert.equal(r.signal, 9);
  assert.equal(r.stdout, 'started\n');
  const left = await run({ command: 'kill -0 "$(cat /tmp/child)" 2>/dev/null && echo alive; ps -o args | grep -c "^sleep 30[01]"' });
  assert.equal(left.stdout, '0\n');
});

test('exec: bad requests are 400, a missing program 404', async () => {
  assertProblem(await exec({ argv: ['true'], command: 'true' }), 400, 'VALIDATION_FAILED');
  assertProblem(await exec({}), 400, 'VALIDATION_FAILED');
  assertProblem(await exec({ argv: ['true'], env: { 'A-B': '1' } }), 400, 'VALIDATION_FAILED');
  assertProblem(await exec({ argv: ['true'], cwd: 'relative' }), 400, 'VALIDATION_FAILED');
  assertProblem(await exec({ command: 'true', stdin: '***', stdinEncoding: 'base64' }), 400, 'VALIDATION_FAILED');
  assertProblem(await exec({ argv: ['true'], bogus: 1 }), 400, 'VALIDATION_FAILED');
  const missing = await exec({ argv: ['/no/such/program'] });
  assertProblem(missing, 404, 'NOT_FOUND');
  assert.match(missing.body.detail, /no\/such\/program/);
});

test('ip: guest addresses from the agent and the forwarded host ports', async () => {
  const r = await waitFor('a DHCP address in the guest', async () => {
    const b = assertOk(await d.call('GET', '/vms/ag/ip'), 200, 'ip');
    return b.ip ? b : null;
  });
  assert.equal(r.ip, '10.0.2.15');
  const eth0 = r.interfaces.find((i: any) => i.name === 'eth0');
  assert.match(eth0.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  assert.ok(eth0.addresses.some((a: any) => a.family === 'ipv4' && a.address === '10.0.2.15' && a.prefix === 24));
  assert.ok(r.interfaces.some((i: any) => i.name === 'lo'));
  assert.deepEqual(r.portForwards, [{ host: forwardPort, guest: 22, protocol: 'tcp' }]);
});

test('osinfo: host name, agent version, os-release and kernel', async () => {
  const r = assertOk(await d.call('GET', '/vms/ag/osinfo'), 200, 'osinfo');
  assert.equal(r.hostname, 'grove-guest');
  assert.equal(r.agentVersion, '7.2.22');
  assert.equal(r.os.id, 'grove-test-guest');
  assert.equal(r.os.prettyName, 'Grove test guest (busybox 1.35.0)');
  assert.match(r.os.kernelRelease, /-cloud-amd64$/);
  assert.equal(r.os.machine, 'x86_64');
});

test('files: a multi-MiB random binary file round-trips byte for byte', async () => {
  const data = randomBytes(9 * 1024 * 1024 + 12345);
  const up = assertOk(await upload('/mnt/disk/blob.bin', data), 201, 'upload');
  assert.deepEqual(up, { path: '/mnt/disk/blob.bin', bytes: data.length });
  assert.equal((await run({ argv: ['sha256sum', '/mnt/disk/blob.bin'] })).stdout.split(' ')[0], sha256(data));
  const down = await download('/mnt/disk/blob.bin');
  assert.equal(down.status, 200);
  assert.equal(down.data.length, data.length);
  assert.equal(sha256(down.data), sha256(data));
  // No temporary file is left beside it.
  const names = assertOk(await d.call('GET', '/vms/ag/files?path=/mnt/disk'), 200, 'list').entries.map((e: any) => e.name);
  assert.ok(!names.some((n: string) => n.includes('grove-')), JSON.stringify(names));
  // An empty file, and an empty body.
  assertOk(await upload('/tmp/empty', Buffer.alloc(0)), 201, 'empty upload');
  const empty = await download('/tmp/empty');
  assert.equal(empty.status, 200);
  assert.equal(empty.data.length, 0);
});

test('files: overwrite, mode, and the 404/409/400 cases', async () => {
  assertOk(await upload('/tmp/f.txt', Buffer.from('one')), 201, 'first');
  assertProblem(await upload('/tmp/f.txt', Buffer.from('two'), '&overwrite=false'), 409, 'CONFLICT');
  assert.equal((await download('/tmp/f.txt')).data.toString(), 'one');
  assertOk(await upload('/tmp/f.txt', Buffer.from('three'), '&mode=0600'), 201, 'overwrite with mode');
  assert.equal((await download('/tmp/f.txt')).data.toString(), 'three');
  assert.equal((await run({ argv: ['stat', '-c', '%a', '/tmp/f.txt'] })).stdout, '600\n');
  // Without mode an existing file keeps its own.
  assertOk(await upload('/tmp/f.txt', Buffer.from('four')), 201, 'overwrite keeps mode');
  assert.equal((await run({ argv: ['stat', '-c', '%a', '/tmp/f.txt'] })).stdout, '600\n');

  const missing = await download('/tmp/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.code, 'NOT_FOUND');
  const dir = await download('/tmp');
  assert.equal(dir.status, 400);
  assert.equal(dir.body.code, 'VALIDATION_FAILED');
  assertProblem(await upload('/no/such/dir/f', Buffer.from('x')), 404, 'NOT_FOUND');
  assertProblem(await upload('/tmp', Buffer.from('x')), 400, 'VALIDATION_FAILED');
  assertProblem(await rawCall(d, 'GET', `/vms/ag/files/content?path=relative`), 400, 'VALIDATION_FAILED');
  assertProblem(await upload('/tmp/g', Buffer.from('x'), '&mode=999'), 400, 'VALIDATION_FAILED');
});

test('files: listing (odd names included), mkdir, delete', async () => {
  assertProblem(await d.call('POST', '/vms/ag/files/mkdir', { path: '/tmp/a/b/c' }), 404, 'NOT_FOUND');
  assert.deepEqual(assertOk(await d.call('POST', '/vms/ag/files/mkdir', { path: '/tmp/a/b/c', parents: true, mode: '0750' }), 201, 'mkdir -p'), { path: '/tmp/a/b/c', created: true });
  assert.deepEqual(assertOk(await d.call('POST', '/vms/ag/files/mkdir', { path: '/tmp/a/b/c', parents: true }), 200, 'mkdir -p again'), { path: '/tmp/a/b/c', created: false });
  assertProblem(await d.call('POST', '/vms/ag/files/mkdir', { path: '/tmp/a' }), 409, 'CONFLICT');
  const odd = ['with space', 'new\nline', 'ünïcödé', '-dash', '.hidden', '*'];
  for (const name of odd) assertOk(await upload(`/tmp/a/${name}`, Buffer.from(name)), 201, `upload ${JSON.stringify(name)}`);
  await run({ argv: ['ln', '-s', '/etc/hostname', '/tmp/a/link'] });

  const list = assertOk(await d.call('GET', `/vms/ag/files?path=${q('/tmp/a')}`), 200, 'list');
  assert.equal(list.path, '/tmp/a');
  const byName = new Map(list.entries.map((e: any) => [e.name, e]));
  assert.deepEqual([...byName.keys()].sort(), [...odd, 'b', 'link'].sort());
  assert.equal((byName.get('b') as any).type, 'directory');
  assert.equal((byName.get('link') as any).type, 'symlink');
  const f = byName.get('with space') as any;
  assert.equal(f.type, 'file');
  assert.equal(f.size, 'with space'.length);
  assert.equal(f.mode, '0644');
  assert.equal(f.uid, 0);
  assert.ok(Date.parse(f.modifiedAt) > Date.parse('2020-01-01'));
  assert.equal((assertOk(await d.call('GET', '/vms/ag/files?path=/tmp/a/b'), 200, 'list b').entries[0]).mode, '0750');
  assert.deepEqual(assertOk(await d.call('GET', '/vms/ag/files?path=/tmp/a/b/c'), 200, 'empty dir').entries, []);
  assertProblem(await d.call('GET', '/vms/ag/files?path=/tmp/none'), 404, 'NOT_FOUND');
  assertProblem(await d.call('GET', `/vms/ag/files?path=${q('/tmp/a/with space')}`), 400, 'VALIDATION_FAILED');

  assert.equal((await d.call('DELETE', `/vms/ag/files?path=${q('/tmp/a/new\nline')}`)).status, 204);
  assert.equal((await d.call('DELETE', '/vms/ag/files?path=/tmp/a/link')).status, 204);
  assert.equal((await run({ argv: ['cat', '/etc/hostname'] })).stdout, 'grove-guest\n', 'a symlink is deleted, not its target');
  assertProblem(await d.call('DELETE', '/vms/ag/files?path=/tmp/a'), 409, 'CONFLICT');
  assertProblem(await d.call('DELETE', '/vms/ag/files?path=/tmp/none'), 404, 'NOT_FOUND');
  assertProblem(await d.call('DELETE', '/vms/ag/files?path=/'), 400, 'VALIDATION_FAILED');
  assert.equal((await d.call('DELETE', '/vms/ag/files?path=/tmp/a&recursive=true')).status, 204);
  assertProblem(await d.call('GET', '/vms/ag/files?path=/tmp/a'), 404, 'NOT_FOUND');
});

test('the agent killed in the guest: disconnected, 409 GUEST_AGENT_UNAVAILABLE; started again: reconnected', async () => {
  let since = await latestEventId(d);
  await execute(d, 'ag', 'kill $(cat /run/qemu-ga.pid)');
  await waitForEvent(d, (e) => e.type === 'agent.disconnected' && e.vmName === 'ag', { since, timeoutMs: 60_000 });
  assert.equal((await getVm(d, 'ag')).agent.connected, false);
  const r = await rawCall(d, 'POST', '/vms/ag/exec', { body: JSON.stringify({ argv: ['true'] }), headers: { 'content-type': 'application/json' }, timeoutMs: 30_000 });
  assertProblem(r, 409, 'GUEST_AGENT_UNAVAILABLE');
  since = await latestEventId(d);
  await execute(d, 'ag', 'start-qemu-ga');
  await waitForEvent(d, (e) => e.type === 'agent.connected' && e.vmName === 'ag', { since, timeoutMs: 60_000 });
  assert.equal((await run({ argv: ['echo', 'back'] })).stdout, 'back\n');
});

test('a guest without an agent: 409 GUEST_AGENT_UNAVAILABLE after the handshake timeout, never a hang', async () => {
  await createGuestVm(d, 'noagent', { cmdline: `${guestFiles().cmdline} grove.noagent` });
  await startReady(d, 'noagent', { acpi: false });
  assert.deepEqual((await getVm(d, 'noagent')).agent, { connected: false, version: null, os: null });
  for (const [method, path, body] of [
    ['POST', '/vms/noagent/exec', JSON.stringify({ argv: ['true'] })],
    ['GET', '/vms/noagent/ip', undefined],
    ['GET', '/vms/noagent/files?path=/', undefined],
  ] as const) {
    const r = await rawCall(d, method, path, { ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}), timeoutMs: 30_000 });
    assertProblem(r, 409, 'GUEST_AGENT_UNAVAILABLE', `${method} ${path}`);
    assert.match(r.body.detail, /does not answer/);
  }
  await forceStop(d, 'noagent');
});

test('stopped VM: 409 INVALID_STATE naming the state; agent null and a disconnected event', async () => {
  const since = await latestEventId(d);
  await forceStop(d, 'ag');
  const ev = await waitForEvent(d, (e) => e.type === 'agent.disconnected' && e.vmName === 'ag', { since });
  assert.equal(ev.data.reason, 'vm stopped');
  assert.equal((await getVm(d, 'ag')).agent, null);
  for (const [method, path] of [['POST', '/vms/ag/exec'], ['GET', '/vms/ag/ip'], ['GET', '/vms/ag/osinfo'], ['GET', '/vms/ag/files?path=/'],
    ['GET', '/vms/ag/files/content?path=/etc/hostname'], ['DELETE', '/vms/ag/files?path=/tmp/x'], ['POST', '/vms/ag/files/mkdir']] as const) {
    const body = method === 'POST' ? (path.endsWith('mkdir') ? { path: '/tmp/x' } : { argv: ['true'] }) : undefined;
    const r = await d.call(method, path, body);
    assertProblem(r, 409, 'INVALID_STATE', `${method} ${path}`);
    assert.equal(r.body.state, 'stopped');
    assert.match(r.body.detail, /stopped/);
  }
  assertProblem(await upload('/tmp/x', Buffer.from('x')), 409, 'INVALID_STATE');
  const types = (await readEvents(d, since)).filter((e) => e.vmName === 'ag').map((e) => e.type);
  assert.deepEqual(types, ['vm.stopped', 'agent.disconnected']);
});
