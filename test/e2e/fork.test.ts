/**
 * End to end for live fork: the real daemon, QEMU (TCG) and the test guest. A parent holding a marker
 * only in RAM (a file on the guest's RAM root, and a variable of its serial shell) is forked into 3
 * running children: each has the marker, its own MAC, hostname, machine-id and host port forwards; disk
 * writes in one are seen by no other; the parent runs on; deleting the parent or a child leaves the rest
 * working. Also the refusals, and the MCP and CLI faces.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createGuestVm, freePort, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem, execute, getVm } from '../helpers/api.js';
import { READY_LINE, REPO_ROOT } from '../helpers/guest.js';
import { runCommand } from '../helpers/run.js';

let d: TestDaemon;
let parentPort: number;
const CHILDREN = ['f1', 'f2', 'f3'];
let forked: any;

before(async () => {
  d = await startDaemon();
  parentPort = await freePort();
  await createGuestVm(d, 'p', { network: { mode: 'user', portForwards: [{ host: parentPort, guest: 7777 }] } });
  assertOk(await d.call('POST', '/vms/p/start', { waitFor: { until: [{ console: READY_LINE }, { agent: true }], mode: 'all', timeoutSeconds: 120 } }), 200, 'start p');
});
after(async () => { await d?.cleanup(); });

/** What a TCP server behind a forwarded host port sends before it closes (retried while the server is not up yet). */
async function readFromPort(port: number): Promise<string> {
  let last = '';
  for (let attempt = 0; attempt < 50; attempt++) {
    last = await new Promise<string>((resolve) => {
      let got = '';
      const s = connect(port, '127.0.0.1');
      s.setTimeout(5000, () => s.destroy());
      s.on('data', (b: Buffer) => { got += b.toString(); });
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
    });
    if (last !== '') return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

const run = async (vm: string, command: string): Promise<string> => {
  const r = assertOk(await d.call('POST', `/vms/${vm}/exec`, { command }), 200, `exec ${command} in ${vm}`);
  assert.equal(r.exitCode, 0, `${vm}: ${command}: ${r.stderr}`);
  return r.stdout.trim();
};

test('fork refuses a stopped VM and bad input', async () => {
  await createGuestVm(d, 'cold');
  assertProblem(await d.call('POST', '/vms/cold/fork', { count: 1 }), 409, 'INVALID_STATE');
  assertProblem(await d.call('POST', '/vms/p/fork', { count: 0 }), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('POST', '/vms/p/fork', { count: 2, names: ['a'] }), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('POST', '/vms/p/fork', { count: 2, names: ['a', 'a'] }), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('POST', '/vms/p/fork', { count: 1, names: ['cold'] }), 409, 'CONFLICT');
  assertProblem(await d.call('POST', '/vms/p/fork', { count: 1, extra: true }), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('POST', '/vms/nope/fork', { count: 1 }), 404, 'VM_NOT_FOUND');
  assert.equal((await d.call('DELETE', '/vms/cold')).status, 204);
});

test('a parent with a RAM-only marker forks into 3 running children that each have it', async () => {
  await run('p', 'echo ram-marker-$$ >/dev/shm/marker; echo 0123456789abcdef0123456789abcdef >/etc/machine-id; echo from-parent >/mnt/disk/before; sync');
  // A variable of the serial shell: lives only in that process's memory.
  const set = await execute(d, 'p', 'FORKMARK=shell-$((6 * 7))');
  assert.equal(set.exitCode, 0);
  const marker = await run('p', 'cat /dev/shm/marker');
  const parentMac = await run('p', 'cat /sys/class/net/eth0/address');

  const r = await d.call('POST', '/vms/p/fork', { count: 3, names: CHILDREN, agentTimeoutSeconds: 120 });
  forked = assertOk(r, 201, 'fork');
  assert.equal(forked.parent.state, 'running');
  assert.deepEqual(forked.children.map((c: any) => c.vm.name), CHILDREN);
  assert.ok(forked.stateBytes > 1024 * 1024, `one capture of ${forked.stateBytes} bytes`);
  const macs = new Set<string>([parentMac]);
  const ids = new Set<string>(['0123456789abcdef0123456789abcdef']);
  const hostPorts = new Set<number>([parentPort]);
  for (const c of forked.children) {
    const name = c.vm.name;
    assert.equal(c.vm.state, 'running', name);
    assert.equal(c.reidentifyError, null, name);
    const steps = Object.fromEntries(c.reidentified.map((s: any) => [s.item, s]));
    for (const item of ['entropy', 'hostname', 'machine-id', 'mac', 'dhcp', 'port-forwards']) assert.equal(steps[item]?.status, 'ok', `${name} ${item}: ${JSON.stringify(steps[item])}`);
    assert.equal(steps['ssh-host-keys'], undefined, 'not asked for');
    // The RAM state came along: the file on the RAM root and the shell's variable.
    assert.equal(await run(name, 'cat /dev/shm/marker'), marker);
    assert.equal((await execute(d, name, 'echo $FORKMARK')).output.trim(), 'shell-42');
    assert.equal(await run(name, 'cat /mnt/disk/before'), 'from-parent');
    // Its own identity.
    const mac = await run(name, 'cat /sys/class/net/eth0/address');
    assert.equal(mac, c.mac);
    assert.ok(!macs.has(mac), `${name} has a MAC of its own: ${mac}`);
    macs.add(mac);
    assert.equal(await run(name, 'hostname'), name);
    const id = await run(name, 'cat /etc/machine-id');
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.ok(!ids.has(id), `${name} has a machine-id of its own`);
    ids.add(id);
    const fwd = c.vm.network.portForwards;
    assert.equal(fwd.length, 1);
    assert.equal(fwd[0].guest, 7777);
    assert.ok(!hostPorts.has(fwd[0].host), `${name} forwards its own host port`);
    hostPorts.add(fwd[0].host);
    // A lease of its own under its MAC (the parent keeps 10.0.2.15), and its forward reaches it there.
    const lease = await run(name, 'ip -4 -o addr show dev eth0 scope global | awk \'{print $4}\'');
    assert.match(lease, /^10\.0\.2\.\d+\/24$/, `${name} holds an IPv4 lease`);
    assert.notEqual(lease, '10.0.2.15/24', `${name}'s lease is not the parent's`);
    assert.ok(steps['dhcp'].detail.endsWith(lease), `${name}: ${steps['dhcp'].detail}`);
    assert.match(await run(name, 'ip route show default'), /^default via 10\.0\.2\.2 dev eth0/);
    await run(name, '(nc -ll -p 7777 -e /bin/hostname </dev/null >/dev/null 2>&1 &)');
    assert.equal(await readFromPort(fwd[0].host), `${name}\n`, `${name}'s host port ${fwd[0].host} reaches its guest`);
    assert.equal((await getVm(d, name)).state, 'running');
  }
  // The parent ran on, as it was.
  assert.equal(await run('p', 'cat /dev/shm/marker'), marker);
  assert.equal(await run('p', 'cat /sys/class/net/eth0/address'), parentMac);
  assert.equal(await run('p', 'cat /etc/machine-id'), '0123456789abcdef0123456789abcdef');
});

test('disk writes in one are invisible to the others and to the parent', async () => {
  await run('f1', 'echo f1 >/mnt/disk/only-f1; echo f1 >/dev/shm/only-f1; sync');
  await run('p', 'echo p >/mnt/disk/only-p; sync');
  for (const vm of ['p', 'f2', 'f3']) {
    assert.equal(await run(vm, 'test -e /mnt/disk/only-f1 && echo yes || echo no'), 'no', vm);
    assert.equal(await run(vm, 'test -e /dev/shm/only-f1 && echo yes || echo no'), 'no', vm);
  }
  for (const vm of CHILDREN) assert.equal(await run(vm, 'test -e /mnt/disk/only-p && echo yes || echo no'), 'no', vm);
  assert.equal(await run('f1', 'cat /mnt/disk/only-f1'), 'f1');
});

test('deleting the parent, then a child, leaves the others working; a child boots cold from its own disk', async () => {
  assert.equal((await d.call('DELETE', '/vms/p?force=true')).status, 204);
  assert.equal((await d.call('DELETE', '/vms/f3?force=true')).status, 204);
  for (const vm of ['f1', 'f2']) {
    // Read from the disk itself, not the page cache: the layers under it must still be there.
    assert.equal(await run(vm, 'echo 3 >/proc/sys/vm/drop_caches; cat /mnt/disk/before'), 'from-parent', vm);
  }
  assertOk(await d.call('POST', '/vms/f2/stop', { timeoutSeconds: 60, force: true }), 200, 'stop f2');
  assertOk(await d.call('POST', '/vms/f2/start', { waitFor: { until: [{ agent: true }], timeoutSeconds: 120 } }), 200, 'cold start f2');
  assert.equal(await run('f2', 'cat /mnt/disk/before'), 'from-parent');
  assert.equal(await run('f2', 'test -e /mnt/disk/only-f1 && echo yes || echo no'), 'no');
  assert.equal(await run('f1', 'cat /mnt/disk/only-f1'), 'f1');
});

test('MCP fork_vm and CLI grove fork -n: a fork of a fork', async () => {
  const c = new Client({ name: 'fork-test', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
  try {
    const r: any = await c.callTool({ name: 'fork_vm', arguments: { vm: 'f1', count: 1, names: ['g1'], keepParentPaused: true } }, undefined, { timeout: 300_000 });
    assert.equal(r.isError, undefined, JSON.stringify(r.content));
    assert.equal(r.structuredContent.children[0].vm.name, 'g1');
    assert.equal(r.structuredContent.parent.state, 'paused');
  } finally {
    await c.close();
  }
  assert.equal(await run('g1', 'cat /mnt/disk/only-f1'), 'f1');
  assert.equal((await d.call('DELETE', '/vms/g1?force=true')).status, 204);
  const env = { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token };
  const cli = await runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), 'fork', 'f1', '-n', '1', '--agent-timeout', '0'], { env, timeoutMs: 300_000 });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^Forked 'f1' \(paused\) into 1: /);
  assert.match(cli.stdout, /^ {2}f1-fork-1 +running +52:54:00:[0-9a-f:]{8} {2}not re-identified: not asked/m);
  assert.equal((await getVm(d, 'f1-fork-1')).state, 'running');
});
