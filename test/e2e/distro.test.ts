// A real Linux distribution end to end: the Debian 12 cloud image built from Debian packages
// (test/distro/build-debian.sh, cached in .cache/debian-12 or GROVE_DEBIAN_IMAGE_DIR) is served with its
// SHA512SUMS by a loopback HTTP server through a test catalog (GROVE_CATALOG), pulled, and booted by real
// QEMU under TCG with a cloud-init seed; OpenSSH logs in through the forwarded port. Also: a VM created
// before its image is local (202 provisioning → stopped), a failing download (→ error), a daemon restart
// while provisioning, deletion of a provisioning VM, and `grove launch`. Debian boots twice in all
// (1–2 min each under TCG): one VM carries every in-guest check.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { assertOk, assertProblem, getVm, rawCall, waitForState } from '../helpers/api.js';
import { startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { latestEventId, readEvents, waitForEvent } from '../helpers/events.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { runCommand, type RunResult } from '../helpers/run.js';

const IMAGE_DIR = process.env['GROVE_DEBIAN_IMAGE_DIR'] ?? join(REPO_ROOT, '.cache', 'debian-12');
const GROVE = join(REPO_ROOT, 'bin', 'grove');
/** Under TCG a Debian boot takes one to two minutes; more when the machine is busy. */
const BOOT_MS = 6 * 60_000;
const MEMORY_MB = 1024;

let scratch: string;
let srv: ImageServer;
let catalogPath: string;
let d: TestDaemon;
let debianSha512: string;
let tinySha512: string;
/** A key pair made by ssh-keygen, given to the first VM through cloud-init. */
let userKey: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-distro-e2e-'));
  const { image: IMAGE, sums } = await snapshotImage(scratch);
  debianSha512 = /^([0-9a-f]{128})\s+\*?debian-12\.qcow2$/m.exec(sums)![1]!;
  // A small real qcow2 for the download cases that need no boot.
  const tiny = join(scratch, 'tiny.qcow2');
  assert.equal((await runCommand('qemu-img', ['create', '-q', '-f', 'qcow2', tiny, '64M'])).code, 0);
  tinySha512 = createHash('sha512').update(readFileSync(tiny)).digest('hex');

  srv = await startImageServer();
  srv.file('/debian-12/debian-12.qcow2', IMAGE);
  srv.text('/debian-12/SHA512SUMS', sums);
  // The same image under a second id and file name: a distro that is not local yet when a VM is made.
  srv.file('/mirror/debian-12-copy.qcow2', IMAGE);
  srv.file('/tiny/tiny.qcow2', tiny);
  srv.file('/tiny/tiny-bad.qcow2', tiny);
  const entry = (id: string, path: string, digest: Record<string, string>) => ({ id, name: `Test ${id}`, version: '12', arch: 'x86_64', format: 'qcow2', url: `${srv.url}${path}`, ...digest });
  catalogPath = join(scratch, 'catalog.json');
  writeFileSync(catalogPath, JSON.stringify({
    distros: [
      entry('debian-12', '/debian-12/debian-12.qcow2', { checksumUrl: `${srv.url}/debian-12/SHA512SUMS` }),
      entry('debian-12-copy', '/mirror/debian-12-copy.qcow2', { sha512: debianSha512 }),
      entry('tiny', '/tiny/tiny.qcow2', { sha512: tinySha512 }),
      entry('tiny-bad', '/tiny/tiny-bad.qcow2', { sha512: 'ab'.repeat(64) }),
    ],
  }));
  d = await startDaemon({ env: { GROVE_CATALOG: catalogPath } });

  const keygen = await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'e2e@test', '-f', join(scratch, 'user-key')]);
  assert.equal(keygen.code, 0, keygen.stderr);
  userKey = readFileSync(join(scratch, 'user-key.pub'), 'utf8').trim();
});

after(async () => {
  await d?.cleanup();
  await srv?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/**
 * The image and its sums copied (reflinked where the filesystem can) into the test's own folder, under the
 * build script's lock: a rebuild of the cache while the test runs must not change what it serves.
 */
async function snapshotImage(into: string): Promise<{ image: string; sums: string }> {
  const image = join(IMAGE_DIR, 'debian-12.qcow2');
  if (!existsSync(image)) throw new Error(`no Debian image at ${image}: build it with test/distro/build-debian.sh, or set GROVE_DEBIAN_IMAGE_DIR`);
  const lock = join(IMAGE_DIR, '.lock');
  const cp = ['cp', '--reflink=auto', '--', image, join(IMAGE_DIR, 'SHA512SUMS'), into];
  const r = existsSync(lock) ? await runCommand('flock', ['-s', lock, ...cp], { timeoutMs: 15 * 60_000 }) : await runCommand(cp[0]!, cp.slice(1));
  assert.equal(r.code, 0, `copying the Debian image: ${r.stderr}`);
  return { image: join(into, 'debian-12.qcow2'), sums: readFileSync(join(into, 'SHA512SUMS'), 'utf8') };
}

const sshPort = (vm: any): number => vm.network.portForwards.find((f: any) => f.guest === 22 && f.protocol === 'tcp').host;

/** The OpenSSH client with a given key, non-interactive, accepting the guest's new host key. */
function ssh(key: string, port: number, user: string, command: string, input?: string): Promise<RunResult> {
  return runCommand('ssh', [
    '-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, command,
  ], { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
}

function grove(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunResult> {
  return runCommand(process.execPath, [GROVE, ...args], { env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token, ...env }, input: '', timeoutMs });
}

/** The pool layer a VM's disk link points at, and the layer that one names as its backing file. */
async function layersOf(vmId: string): Promise<{ top: string; backing: string | null }> {
  const link = join(d.dataDir, 'vms', vmId, 'disk.qcow2');
  assert.ok(lstatSync(link).isSymbolicLink(), 'the VM\'s disk is a link into the pool');
  const top = realpathSync(link);
  const r = await runCommand('qemu-img', ['info', '-U', '--output=json', top]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  return { top, backing: info['backing-filename'] ?? null };
}

async function downloadEnded(id: string): Promise<any> {
  let last: any;
  await waitFor(`download ${id} to end`, async () => {
    last = assertOk(await d.call('GET', `/downloads/${id}`), 200, 'GET /downloads/:id');
    return last.state !== 'queued' && last.state !== 'running';
  }, 120_000);
  return last;
}

test('create refuses a VM with nothing to boot (400 naming what to give), an unknown distro (404) and a distro with boot files (400)', async () => {
  const none = await d.call('POST', '/vms', { name: 'nothing', memoryMB: 256 });
  assertProblem(none, 400, 'VALIDATION_FAILED');
  assert.match(none.body.detail, /^nothing to boot: give `distro` .*, `image` .*, `kernel` .* or `iso`$/);
  assertProblem(await d.call('POST', '/vms', { name: 'nope', distro: 'no-such-distro' }), 404, 'DISTRO_NOT_FOUND');
  const both = await d.call('POST', '/vms', { name: 'both', distro: 'debian-12', kernel: 'vmlinuz' });
  assertProblem(both, 400, 'VALIDATION_FAILED');
  assert.match(both.body.detail, /`distro` brings its own disk and boot loader: leave out `kernel`/);
  assertProblem(await d.call('POST', '/vms/launch', { distro: 'no-such-distro' }), 404, 'DISTRO_NOT_FOUND');
  assert.deepEqual(assertOk(await d.call('GET', '/vms'), 200, 'list'), [], 'nothing was created');
});

let web: any;
let base: string;

test('pull, then create from the local image: 201 stopped, the disk an empty layer over a read-only base named by the digest; removing the image leaves it', async () => {
  const dl = assertOk(await d.call('POST', '/downloads', { distro: 'debian-12' }), 202, 'pull');
  assert.equal((await downloadEnded(dl.id)).state, 'completed');

  web = assertOk(await d.call('POST', '/vms', {
    name: 'web', distro: 'debian-12', memoryMB: MEMORY_MB, cloudInit: { user: 'alice', sshAuthorizedKeys: [userKey], hostname: 'web-host' },
  }), 201, 'create web');
  assert.equal(web.state, 'stopped');
  assert.equal(web.distro, 'debian-12');
  assert.equal(web.diskGB, 8, 'default 8 GiB (the image is 2 GiB)');
  assert.deepEqual([web.cloudInit.user, web.cloudInit.hostname, web.cloudInit.sshAuthorizedKeys], ['alice', 'web-host', [userKey]]);
  assert.ok(sshPort(web) >= 1024, 'an SSH forward was chosen');

  const { top, backing } = await layersOf(web.id);
  assert.equal(backing, `image-sha512-${debianSha512}.qcow2`);
  base = join(d.dataDir, 'disks', backing!);
  const img = join(d.dataDir, 'images', 'debian-12.qcow2');
  assert.equal(statSync(base).ino, statSync(img).ino, 'the base is a hard link to the verified image, not a copy');
  assert.equal(statSync(base).mode & 0o777, 0o444, 'the base is read-only');
  assert.ok(statSync(top).size < 1024 * 1024, `the VM's own layer is empty (${statSync(top).size} bytes)`);
  const info = JSON.parse((await runCommand('qemu-img', ['info', '-U', '--output=json', top])).stdout);
  assert.equal(info['virtual-size'], 8 * 1024 ** 3);

  assertOk(await d.call('DELETE', '/images/debian-12'), 204, 'remove the image');
  assert.equal(existsSync(img), false);
  assert.equal(existsSync(base), true, 'the pool keeps its own link');
});

test('the Debian guest boots: SSH answers, OpenSSH logs in with the injected key and sees the requested hostname, grove ssh works, a file round-trips; the agent answers (exec, ip, files); a disk snapshot with fsfreeze, a live snapshot, ACPI stop', { timeout: BOOT_MS + 5 * 60_000 }, async (t) => {
  const bootStart = Date.now();
  const started = assertOk(await d.call('POST', '/vms/web/start'), 200, 'start web');
  assert.equal(started.vm.state, 'running');
  const key = join(scratch, 'user-key');
  const port = sshPort(web);
  let login: RunResult | undefined;
  await waitFor('SSH login to web', async () => {
    if ((await getVm(d, 'web')).state !== 'running') throw new Error(`web is no longer running: ${JSON.stringify(await getVm(d, 'web'))}`);
    login = await ssh(key, port, 'alice', 'hostname');
    return login.code === 0;
  }, BOOT_MS).catch((e: Error) => { throw new Error(`${e.message}; last ssh: ${JSON.stringify(login)}`); });
  assert.equal(login!.stdout, 'web-host\n');
  t.diagnostic(`Debian 12, ${MEMORY_MB} MiB, TCG: start to the first SSH login ${Date.now() - bootStart} ms`);

  // Keys only, set before sshd first started: once cloud-init's config stage (set-passwords among its
  // steps) is over, sshd has still started exactly once, so no login made after the first greeting was
  // reset by a restart. That stage is waited for by Grove's own wait (a command through the agent).
  const configStage = { command: 'systemctl is-active --quiet cloud-config.service' };
  const waited = assertOk(await d.call('POST', '/vms/web/wait', { until: [configStage], timeoutSeconds: BOOT_MS / 1000 }), 200, 'wait for cloud-init\'s config stage');
  assert.equal(waited.matched[0].kind, 'command', JSON.stringify(waited));
  const sshd = assertOk(await d.call('POST', '/vms/web/exec', {
    command: 'sshd -T | grep -i "^passwordauthentication "; journalctl -b -o cat -u ssh.service | grep -c "^Server listening on 0.0.0.0 port 22"; grep "cc_set_passwords" /var/log/cloud-init.log >&2',
    timeoutSeconds: 60,
  }), 200, 'sshd\'s settings and its starts');
  // On failure the message carries what set-passwords logged (it says whether it restarted sshd).
  assert.equal(sshd.stdout, 'passwordauthentication no\n1\n', `sshd: ${JSON.stringify(sshd)}`);

  const viaGrove = await grove(['ssh', 'web', '--', 'cat', '/etc/hostname']);
  assert.equal(viaGrove.code, 0, viaGrove.stderr);
  assert.equal(viaGrove.stdout, 'web-host\n');

  const payload = randomBytes(192 * 1024).toString('base64');
  assert.equal((await ssh(key, port, 'alice', 'cat > /tmp/round-trip.txt', payload)).code, 0);
  const back = await ssh(key, port, 'alice', 'cat /tmp/round-trip.txt');
  assert.equal(back.code, 0, back.stderr);
  assert.equal(createHash('sha256').update(back.stdout).digest('hex'), createHash('sha256').update(payload).digest('hex'), 'the file came back unchanged');

  // The guest agent (Debian's qemu-guest-agent, started by systemd on its virtio-serial port).
  await waitFor('the agent of web', async () => (await getVm(d, 'web')).agent?.connected === true, 120_000);
  const agent = (await getVm(d, 'web')).agent;
  assert.match(agent.version, /^7\.2\.\d+$/, 'bookworm ships qemu-guest-agent 7.2');
  assert.equal(agent.os, 'Debian GNU/Linux 12 (bookworm)');
  const host = assertOk(await d.call('POST', '/vms/web/exec', { argv: ['hostname'] }), 200, 'agent exec hostname');
  assert.deepEqual([host.exitCode, host.stdout, host.stderr], [0, 'web-host\n', '']);
  const who = assertOk(await d.call('POST', '/vms/web/exec', { command: 'id -un; cat /etc/debian_version | cut -d. -f1', env: { LC_ALL: 'C' } }), 200, 'agent exec');
  assert.equal(who.stdout, 'root\n12\n', 'the agent runs as root in Debian 12');
  const addr = await waitFor('an address from the agent', async () => {
    const b = assertOk(await d.call('GET', '/vms/web/ip'), 200, 'ip');
    return b.ip ? b : null;
  }, 60_000);
  assert.equal(addr.ip, '10.0.2.15');

  // A binary file through the agent, read back by the agent and by alice over SSH.
  const blob = randomBytes(3 * 1024 * 1024 + 17);
  const digest = createHash('sha256').update(blob).digest('hex');
  const put = await rawCall(d, 'PUT', '/vms/web/files/content?path=%2Fhome%2Falice%2Fblob.bin&mode=644', {
    body: blob, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 180_000,
  });
  assertOk(put, 201, 'upload through the agent');
  const got = await fetch(`${d.api}/vms/web/files/content?path=%2Fhome%2Falice%2Fblob.bin`, { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(180_000) });
  assert.equal(got.status, 200);
  assert.equal(createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex'), digest, 'downloaded unchanged');
  const seen = await ssh(key, port, 'alice', 'sha256sum /home/alice/blob.bin');
  assert.equal(seen.code, 0, seen.stderr);
  assert.equal(seen.stdout, `${digest}  /home/alice/blob.bin\n`);

  // A disk-only snapshot of the running guest: its filesystems are frozen (synced) while it is taken, then thawed.
  assert.equal((await ssh(key, port, 'alice', 'echo unsynced > /home/alice/marker')).code, 0);
  const since = await latestEventId(d);
  const cold = assertOk(await d.call('POST', '/vms/web/snapshots', { name: 'quiesced', memory: false }), 201, 'disk snapshot');
  assert.equal(cold.kind, 'disk');
  const created = await waitForEvent(d, (e) => e.type === 'snapshot.created' && e.vmName === 'web', { since });
  assert.equal(created.data['quiesced'], true, 'fsfreeze through the agent');
  const thawed = assertOk(await d.call('POST', '/vms/web/exec', { command: 'touch /home/alice/after-thaw && echo ok', timeoutSeconds: 30 }), 200, 'write after the thaw');
  assert.deepEqual([thawed.exitCode, thawed.stdout], [0, 'ok\n']);

  const snap = assertOk(await d.call('POST', '/vms/web/snapshots', { name: 'booted' }), 201, 'live snapshot');
  assert.equal(snap.kind, 'live');
  assert.equal((await getVm(d, 'web')).state, 'running');

  const stopped = assertOk(await d.call('POST', '/vms/web/stop', { timeoutSeconds: 180 }), 200, 'ACPI stop');
  assert.equal(stopped.state, 'stopped');
  const events = await readEvents(d);
  assert.ok(events.some((e) => e.type === 'vm.stopped' && e.vmId === web.id && e.data['reason'] !== 'forced'), 'the guest powered itself off');

  // A clone is still of that distro, on a chain that ends in the same image base.
  const clone = assertOk(await d.call('POST', '/vms/web/clone', { name: 'web-clone' }), 201, 'clone');
  assert.equal(clone.distro, 'debian-12');
  const chain = (await runCommand('qemu-img', ['info', '-U', '--backing-chain', '--output=json', (await layersOf(clone.id)).top])).stdout;
  assert.equal(JSON.parse(chain).at(-1).filename, base);
  assertOk(await d.call('DELETE', '/vms/web-clone'), 204, 'delete the clone');
});

test('create from a distro not downloaded yet: 202 provisioning (start refused), then stopped once the image is verified, on the same shared base', async () => {
  // Held part-way until the checks below are done, so the VM is sure to be provisioning meanwhile.
  srv.faults.stallAfter = 1024 * 1024;
  const r = await d.call('POST', '/vms', { name: 'again', distro: 'debian-12-copy', memoryMB: MEMORY_MB });
  const vm = assertOk(r, 202, 'create while downloading');
  assert.equal(vm.state, 'provisioning');
  assert.match(r.headers.get('location') ?? '', new RegExp(`/api/v1/vms/${vm.id}$`));
  const downloads = assertOk(await d.call('GET', '/downloads'), 200, 'downloads');
  assert.ok(downloads.some((x: any) => x.distro === 'debian-12-copy'), 'the create started the download');
  const start = await d.call('POST', '/vms/again/start');
  assertProblem(start, 409, 'INVALID_STATE');
  assert.match(start.body.detail, /cannot start VM 'again' while it is provisioning/);
  assert.equal((await getVm(d, 'again')).state, 'provisioning');
  // The held connection drops; the download resumes with Range and completes.
  delete srv.faults.stallAfter;
  srv.release();

  const done = await waitForState(d, 'again', 'stopped', 120_000);
  assert.equal(done.diskGB, 8);
  assert.equal(done.lastError, null);
  const events = await readEvents(d);
  const updated = events.find((e) => e.type === 'vm.updated' && e.vmId === vm.id);
  assert.ok(updated, 'vm.updated when it got its disk');
  assert.equal(updated.data['state'], 'stopped');
  assert.equal(updated.data['previousState'], 'provisioning');
  assert.ok(updated.data['changes'].includes('state'));
  const { backing } = await layersOf(vm.id);
  assert.equal(backing, basename(base), 'the same image (by digest) shares one base layer');

  assertOk(await d.call('DELETE', '/vms/again'), 204, 'delete');
  assert.equal(existsSync(base), true, 'web still needs the base');
});

test('a download that fails (checksum mismatch) puts the VM in error with its reason and code; it cannot start and can be deleted', async () => {
  const vm = assertOk(await d.call('POST', '/vms', { name: 'broken', distro: 'tiny-bad' }), 202, 'create');
  const failed = await waitForState(d, 'broken', 'error', 60_000);
  assert.match(failed.lastError, /^download of 'tiny-bad' failed: .*(checksum|SHA-?512|digest)/i);
  const events = await readEvents(d);
  const err = events.find((e) => e.type === 'vm.error' && e.vmId === vm.id);
  assert.ok(err, 'vm.error event');
  assert.equal(err.data['code'], 'CHECKSUM_MISMATCH');
  assert.equal(err.data['error'], failed.lastError);
  const start = await d.call('POST', '/vms/broken/start');
  assertProblem(start, 409, 'CONFLICT');
  assert.match(start.body.detail, /has no disk \(the image of 'tiny-bad' never arrived\)/);
  assertOk(await d.call('DELETE', '/vms/broken'), 204, 'delete');
});

test('a provisioning VM can be deleted, and one left provisioning by a daemon restart gets its disk after it', async () => {
  srv.faults.stallAfter = 4096;
  const slow = assertOk(await d.call('POST', '/vms', { name: 'slow', distro: 'tiny' }), 202, 'create slow');
  assertOk(await d.call('POST', '/vms', { name: 'doomed', distro: 'tiny' }), 202, 'create doomed');
  const tinyDownloads = (assertOk(await d.call('GET', '/downloads'), 200, 'downloads') as any[]).filter((x) => x.distro === 'tiny');
  assert.equal(tinyDownloads.length, 1, 'the second create joined the download');
  assertOk(await d.call('DELETE', '/vms/doomed'), 204, 'delete while provisioning');
  assert.equal((await d.call('GET', '/vms/doomed')).status, 404);

  await d.stop();
  delete srv.faults.stallAfter;
  srv.release();
  d = await d.restart();
  const done = await waitForState(d, 'slow', 'stopped', 60_000);
  assert.equal(done.diskGB, 8, 'default 8 GiB over the 64 MiB image');
  assert.equal((await layersOf(slow.id)).backing, `image-sha512-${tinySha512}.qcow2`);
  assertOk(await d.call('DELETE', '/vms/slow'), 204, 'delete');
  // Nothing needs the tiny image's base any more: the pool's collector removed it.
  assert.equal(existsSync(join(d.dataDir, 'disks', `image-sha512-${tinySha512}.qcow2`)), false);
});

test('grove launch: creates (here with --autostart), boots and waits until SSH answers; the caller\'s own key logs in', { timeout: BOOT_MS + 2 * 60_000 }, async () => {
  const home = join(scratch, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  const keygen = await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@laptop', '-f', join(home, '.ssh', 'id_ed25519')]);
  assert.equal(keygen.code, 0, keygen.stderr);
  // The image is local (the provisioning test downloaded it): no pull, straight to the boot.
  const r = await grove(['launch', 'debian-12-copy', 'lx', '--memory', String(MEMORY_MB), '--autostart', '--timeout', String(BOOT_MS / 1000)], { HOME: home }, BOOT_MS + 60_000);
  assert.equal(r.code, 0, `grove launch: ${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^Launched 'lx' \(debian-12-copy\): SSH answered [\d.]+ s after the start \(SSH-2\.0-OpenSSH_\S+.*\)\.\nLog in:  grove ssh lx\n/);
  const vm = await getVm(d, 'lx');
  assert.equal(vm.state, 'running');
  assert.equal(vm.autostart, true, 'launch --autostart');
  assert.deepEqual(vm.cloudInit.sshAuthorizedKeys, [readFileSync(join(home, '.ssh', 'id_ed25519.pub'), 'utf8').trim()]);
  const own = await ssh(join(home, '.ssh', 'id_ed25519'), sshPort(vm), 'grove', 'hostname');
  assert.equal(own.code, 0, own.stderr);
  assert.equal(own.stdout, 'lx\n');
  assertOk(await d.call('DELETE', '/vms/lx?force=true'), 204, 'delete');
});
