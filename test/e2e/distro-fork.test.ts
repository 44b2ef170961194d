// Live fork of a real distribution (issue #10 §3): the Debian 12 image (test/distro/build-debian.sh, cached in
// .cache/debian-12 or GROVE_DEBIAN_IMAGE_DIR) is pulled through a loopback mirror, booted once under TCG with
// cloud-init, and forked into 2 running children with new SSH host keys. Each child is checked through the
// guest agent and from the host: its hostname, a /etc/machine-id of its own, its own MAC on the NIC, a DHCP
// lease taken after the fork under that MAC (systemd-networkd), its SSH port forward aimed at the new address
// (also after a suspend to disk and resume), and an OpenSSH host key that is neither the parent's nor its sibling's. One Debian boot in all.
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/distro-fork.test.js
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertOk, getVm } from '../helpers/api.js';
import { startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { runCommand } from '../helpers/run.js';

const IMAGE_DIR = process.env['GROVE_DEBIAN_IMAGE_DIR'] ?? join(REPO_ROOT, '.cache', 'debian-12');
/** Under TCG a Debian boot takes one to two minutes; more when the machine is busy. */
const BOOT_MS = 6 * 60_000;
const MEMORY_MB = 512;
const CHILDREN = ['deb-a', 'deb-b'];

let scratch: string;
let srv: ImageServer;
let d: TestDaemon;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-distro-fork-'));
  const image = join(IMAGE_DIR, 'debian-12.qcow2');
  if (!existsSync(image)) throw new Error(`no Debian image at ${image}: build it with test/distro/build-debian.sh, or set GROVE_DEBIAN_IMAGE_DIR`);
  // A copy under the build script's lock: a rebuild of the cache while the test runs must not change what it serves.
  const lock = join(IMAGE_DIR, '.lock');
  const cp = ['cp', '--reflink=auto', '--', image, join(IMAGE_DIR, 'SHA512SUMS'), scratch];
  const r = existsSync(lock) ? await runCommand('flock', ['-s', lock, ...cp], { timeoutMs: 15 * 60_000 }) : await runCommand(cp[0]!, cp.slice(1));
  assert.equal(r.code, 0, `copying the Debian image: ${r.stderr}`);
  srv = await startImageServer();
  srv.file('/debian-12/debian-12.qcow2', join(scratch, 'debian-12.qcow2'));
  srv.text('/debian-12/SHA512SUMS', readFileSync(join(scratch, 'SHA512SUMS'), 'utf8'));
  const catalog = join(scratch, 'catalog.json');
  writeFileSync(catalog, JSON.stringify({
    distros: [{ id: 'debian-12', name: 'Debian 12', version: '12', arch: 'x86_64', format: 'qcow2', url: `${srv.url}/debian-12/debian-12.qcow2`, checksumUrl: `${srv.url}/debian-12/SHA512SUMS` }],
  }));
  d = await startDaemon({ env: { GROVE_CATALOG: catalog } });
});

after(async () => {
  await d?.cleanup();
  await srv?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A command through the guest agent, which must exit 0; its stdout trimmed. */
async function sh(vm: string, command: string, timeoutSeconds = 60): Promise<string> {
  const r = assertOk(await d.call('POST', `/vms/${vm}/exec`, { command, timeoutSeconds }), 200, `exec in ${vm}: ${command}`);
  assert.equal(r.exitCode, 0, `${vm}: ${command}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

const sshPort = (vm: any): number => vm.network.portForwards.find((f: any) => f.guest === 22 && f.protocol === 'tcp').host;

/** The ED25519 host key fingerprint OpenSSH serves on a VM's forwarded SSH port, as the host sees it. */
async function hostKeyFingerprint(port: number): Promise<string> {
  const scan = await runCommand('ssh-keyscan', ['-T', '20', '-t', 'ed25519', '-p', String(port), '127.0.0.1'], { timeoutMs: 60_000 });
  assert.equal(scan.code, 0, scan.stderr);
  const line = scan.stdout.split('\n').find((l) => / ssh-ed25519 /.test(l));
  assert.ok(line, `ssh-keyscan found an ED25519 key: ${scan.stdout}${scan.stderr}`);
  const fp = await runCommand('ssh-keygen', ['-l', '-f', '-'], { input: `${line}\n` });
  assert.equal(fp.code, 0, fp.stderr);
  return fp.stdout.split(' ')[1]!;
}

/** What makes a guest this machine on the network and in logs. */
async function identityOf(vm: string): Promise<{ hostname: string; machineId: string; dev: string; mac: string; ip: string; keyInGuest: string }> {
  const dev = await sh(vm, "ip route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1");
  assert.match(dev, /^\w+$/, `${vm} has a default route`);
  return {
    dev,
    hostname: await sh(vm, 'hostname'),
    machineId: await sh(vm, 'cat /etc/machine-id'),
    mac: await sh(vm, `cat /sys/class/net/${dev}/address`),
    ip: await sh(vm, `ip -4 -o addr show dev ${dev} scope global | awk '{print $4}'`),
    keyInGuest: (await sh(vm, 'ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub')).split(' ')[1]!,
  };
}

test('a booted Debian guest forked into 2 children: each has its own hostname, machine-id, MAC, a new DHCP lease under it (its forwards following), and new SSH host keys', { timeout: BOOT_MS + 15 * 60_000 }, async (t) => {
  const dl = assertOk(await d.call('POST', '/downloads', { distro: 'debian-12' }), 202, 'pull');
  await waitFor('the pull', async () => assertOk(await d.call('GET', `/downloads/${dl.id}`), 200, 'download').state === 'completed', 120_000);
  const parent = assertOk(await d.call('POST', '/vms', { name: 'deb', distro: 'debian-12', memoryMB: MEMORY_MB, cloudInit: { hostname: 'deb-parent' } }), 201, 'create');
  const t0 = performance.now();
  assertOk(await d.call('POST', '/vms/deb/start'), 200, 'start');
  // Polled, not a start with waitFor: fetch gives up on an answer after 300 s, and a busy TCG boot can take longer.
  await waitFor('the agent of deb', async () => (await getVm(d, 'deb')).agent?.connected === true, BOOT_MS);
  const bootMs = performance.now() - t0;
  // The parent is taken once cloud-init is done (its last stage installs packages and runs runcmd), so
  // the children do not each finish a boot half done.
  await sh('deb', 'cloud-init status --wait >/dev/null 2>&1; cloud-init status | grep -q "status: done"', 300);
  const before = await identityOf('deb');
  assert.equal(before.hostname, 'deb-parent');
  assert.equal(before.ip, '10.0.2.15/24');
  const parentKey = await hostKeyFingerprint(sshPort(parent));
  assert.equal(parentKey, before.keyInGuest, 'sshd serves the key in /etc/ssh');
  // The networkd lease file of the NIC, and a marker written just before the fork: a lease renewed by a
  // child is newer than the marker its RAM and disk came with.
  const lease = `/run/systemd/netif/leases/$(cat /sys/class/net/${before.dev}/ifindex)`;
  await sh('deb', `test -s ${lease} && touch /run/grove-before-fork && sleep 1`);

  const t1 = performance.now();
  const forked = assertOk(await d.call('POST', '/vms/deb/fork', { count: 2, names: CHILDREN, regenerateSshHostKeys: true, agentTimeoutSeconds: 240 }), 201, 'fork');
  const forkMs = performance.now() - t1;
  t.diagnostic(`Debian 12, ${MEMORY_MB} MiB, TCG: boot to agent ${Math.round(bootMs)} ms; fork into 2 running, re-identified children ${Math.round(forkMs)} ms `
    + `(capture ${forked.durations.captureMs} ms, start ${forked.durations.startMs} ms, re-identify ${forked.durations.reidentifyMs} ms), state ${forked.stateBytes} bytes`);
  assert.equal(forked.parent.state, 'running');

  const seen = { machineId: new Set([before.machineId]), mac: new Set([before.mac]), key: new Set([parentKey]) };
  for (const c of forked.children) {
    const name: string = c.vm.name;
    assert.equal(c.reidentifyError, null, name);
    assert.deepEqual(c.reidentified.map((s: any) => `${s.item} ${s.status}`),
      ['entropy ok', 'hostname ok', 'machine-id ok', 'mac ok', 'dhcp ok', 'ssh-host-keys ok', 'port-forwards ok'], `${name}: ${JSON.stringify(c.reidentified)}`);
    const now = await identityOf(name);
    assert.equal(now.hostname, name);
    assert.equal(await sh(name, 'hostnamectl hostname'), name, 'systemd knows the new name too');
    assert.equal(await sh(name, 'cat /etc/hostname'), name);
    assert.match(now.machineId, /^[0-9a-f]{32}$/);
    assert.ok(!seen.machineId.has(now.machineId), `${name} has a machine-id of its own: ${now.machineId}`);
    seen.machineId.add(now.machineId);
    assert.equal(now.mac, c.mac, `${name}'s NIC carries the MAC Grove gave it`);
    assert.ok(!seen.mac.has(now.mac), `${name} has a MAC of its own: ${now.mac}`);
    seen.mac.add(now.mac);
    // A new lease: networkd manages the NIC under its new MAC and wrote the lease after the fork. QEMU's
    // user network came with the parent's DHCP table, where 10.0.2.15 belongs to the parent's MAC, so the
    // child's address is the next one; its host port forwards follow it (checked with ssh-keyscan below).
    assert.equal(now.ip, '10.0.2.16/24');
    assert.equal(await sh(name, `test ${lease} -nt /run/grove-before-fork && echo renewed || echo old`), 'renewed');
    // Routable: networkd manages the NIC again under its new MAC ("configuring" may last: it asks for DHCPv6
    // too, which QEMU's user network never answers).
    assert.match(await sh(name, `networkctl status ${now.dev} --no-pager | sed -n 's/^ *State: //p'`), /^routable \(/);
    assert.equal(assertOk(await d.call('GET', `/vms/${name}/ip`), 200, 'ip').ip, '10.0.2.16');
    assert.equal(await sh(name, 'ping -c 1 -W 5 10.0.2.2 >/dev/null && echo reached'), 'reached', 'the gateway answers the new MAC');
    // New host keys, and sshd serves them.
    const key = await hostKeyFingerprint(sshPort(await getVm(d, name)));
    assert.equal(key, now.keyInGuest, `${name}'s sshd serves its new key`);
    assert.ok(!seen.key.has(key), `${name} has an SSH host key of its own: ${key}`);
    seen.key.add(key);
  }
  // Suspended to disk and resumed, a child keeps its lease (the saved network state has it) and its
  // forwards are aimed at it again (the new QEMU aims them at 10.0.2.15 when it starts).
  const first = forked.children[0].vm.name as string;
  const keyBefore = await hostKeyFingerprint(sshPort(await getVm(d, first)));
  assert.equal(assertOk(await d.call('POST', `/vms/${first}/suspend`), 200, 'suspend').state, 'suspended');
  assert.equal(assertOk(await d.call('POST', `/vms/${first}/start`), 200, 'resume').vm.state, 'running');
  assert.equal((await identityOf(first)).ip, '10.0.2.16/24');
  assert.equal(await hostKeyFingerprint(sshPort(await getVm(d, first))), keyBefore, `${first}'s forwarded SSH port reaches it after the resume`);
  // The parent is left as it was.
  const after = await identityOf('deb');
  assert.deepEqual(after, before);
  assert.equal(await hostKeyFingerprint(sshPort(parent)), parentKey);
});
