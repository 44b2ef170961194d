#!/usr/bin/env node
// Boots the Debian image from build-debian.sh under QEMU TCG by hand, with a NoCloud seed made here, and
// proves: cloud-init finishes (serial console), the QEMU guest agent answers and reports the hostname the
// seed asked for, OpenSSH lets the seed's user in with the seed's key, and an ACPI power-down ends QEMU.
//
//   node test/distro/boot-check.mjs [--image FILE] [--smp N] [--memory MiB] [--seed iso|vfat] [--keep]
//
// Prints one line per step with the time since QEMU started, then a JSON summary line. Exit 0 when every
// check passed. Needs qemu-system-x86_64, qemu-img, ssh, ssh-keygen, genisoimage, mkfs.vfat and mcopy
// (apt-installed when missing, as root). --keep leaves the temp dir (console log, key, seed) for a look.
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, readFile, rm, readdir, open } from 'node:fs/promises';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const image = path.resolve(opt('--image', path.join(repo, '.cache/debian-12/debian-12.qcow2')));
const smp = Number(opt('--smp', '2'));
const memoryMB = Number(opt('--memory', '1024'));
const keep = args.includes('--keep');
const seedFormat = opt('--seed', 'iso');
if (!['iso', 'vfat'].includes(seedFormat)) throw new Error(`--seed is iso or vfat, not ${seedFormat}`);

// Limits for a 2-core machine shared with other work; the boot itself takes about a minute.
const BOOT_TIMEOUT_MS = 8 * 60_000;
const POWERDOWN_TIMEOUT_MS = 2 * 60_000;
const HOSTNAME = `grove-check-${process.pid}`;
const USER = 'grove';

const log = (msg) => process.stderr.write(`boot-check: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let t0 = 0;
const since = () => ((Date.now() - t0) / 1000).toFixed(1);
const step = (msg) => log(`[${since()} s] ${msg}`);

async function hostTools() {
  const need = { 'qemu-system-x86_64': 'qemu-system-x86', 'qemu-img': 'qemu-utils', ssh: 'openssh-client',
    'ssh-keygen': 'openssh-client', genisoimage: 'genisoimage', 'mkfs.vfat': 'dosfstools', mcopy: 'mtools' };
  const missing = new Set();
  for (const [bin, pkg] of Object.entries(need)) {
    try { await run('sh', ['-c', `PATH=$PATH:/usr/sbin:/sbin command -v ${bin}`]); } catch { missing.add(pkg); }
  }
  if (missing.size === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing host packages (install as root): ${[...missing].join(' ')}`);
  log(`installing ${[...missing].join(' ')}`);
  await run('apt-get', ['update', '-qq']);
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing],
    { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

// user + system CPU time of a process, in seconds (/proc/PID/stat fields 14 and 15, in clock ticks).
function qemuCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(((Number(f[11]) + Number(f[12])) / 100).toFixed(1));
  } catch { return null; }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// --- the NoCloud seed: an ISO 9660 volume labelled cidata with user-data and meta-data ---
async function makeSeed(dir, pubKey) {
  const userData = `#cloud-config
hostname: ${HOSTNAME}
users:
  - name: ${USER}
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: true
    ssh_authorized_keys:
      - ${pubKey.trim()}
ssh_pwauth: false
`;
  // No `packages:` key: nothing is installed from the network. (`packages: []` would do the same, but
  // cloud-init 22.4's schema wants at least one item and logs "Invalid cloud-config provided".)
  // meta-data names another hostname on purpose: the user-data one must win.
  const metaData = `instance-id: iid-grove-check-${process.pid}\nlocal-hostname: seed-meta-name\n`;
  const seedDir = path.join(dir, 'seed');
  await run('mkdir', ['-p', seedDir]);
  await writeFile(path.join(seedDir, 'user-data'), userData);
  await writeFile(path.join(seedDir, 'meta-data'), metaData);
  const files = [path.join(seedDir, 'user-data'), path.join(seedDir, 'meta-data')];
  const seed = path.join(dir, `seed.${seedFormat}`);
  if (seedFormat === 'iso') {
    await run('genisoimage', ['-quiet', '-output', seed, '-volid', 'cidata', '-joliet', '-rock', ...files]);
  } else {
    // FAT labels are upper case; cloud-init looks for CIDATA as well as cidata.
    await run('truncate', ['-s', '1M', seed]);
    await run('/sbin/mkfs.vfat', ['-n', 'CIDATA', seed]);
    await run('mcopy', ['-i', seed, ...files, '::']);
  }
  return seed;
}

// Milestones on the serial console, stamped with the time they first appear (read every 200 ms, so a
// slow ssh or agent try in the main loop does not blur them).
const MILESTONES = [
  ['grub', /Booting `Debian/],
  ['kernel', /Linux version \d[^\r\n]*/],
  ['loginPrompt', / login: /],
  ['cloudInitFinished', /Cloud-init v\. \S+ finished at [^\r\n]*/],
];
function watchConsole(file, onMilestone) {
  const seen = {};
  let text = '';
  let pos = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const fh = await open(file, 'r');
      try {
        const { bytesRead, buffer } = await fh.read({ buffer: Buffer.alloc(1 << 20), position: pos });
        pos += bytesRead;
        text += buffer.subarray(0, bytesRead).toString('latin1');
      } finally { await fh.close(); }
    } catch { /* not created yet */ }
    for (const [name, re] of MILESTONES) {
      const m = seen[name] === undefined && text.match(re);
      if (m) { seen[name] = m[0].trim(); onMilestone(name, seen[name]); }
    }
    // Keep only a tail long enough for a line that is still being written.
    if (text.length > 8192) text = text.slice(-4096);
    busy = false;
  }, 200);
  return { seen, stop: () => clearInterval(timer) };
}

// --- QMP and QGA: one JSON object per line over a unix socket ---
class JsonSocket {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.pump(); });
    sock.on('error', () => {});
  }

  static connect(file, timeoutMs = 2000) {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(file);
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect ${file}: timeout`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(new JsonSocket(s)); });
      s.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  pump() {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0 || this.waiters.length === 0) return;
      let line = this.buf.subarray(0, nl);
      this.buf = this.buf.subarray(nl + 1);
      // The agent puts a 0xFF byte before its guest-sync-delimited answer: whatever precedes it is stale.
      line = line.subarray(line.lastIndexOf(0xff) + 1);
      let msg;
      try { msg = JSON.parse(line.toString('utf8')); } catch { continue; }
      this.waiters.shift()(msg);
    }
  }

  // Next JSON line (events skipped when skipEvents), or null after timeoutMs.
  next(timeoutMs, skipEvents = true) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== got); resolve(null); }, timeoutMs);
      const got = (msg) => {
        if (skipEvents && msg.event) { this.waiters.unshift(got); return; }
        clearTimeout(timer);
        resolve(msg);
      };
      this.waiters.push(got);
      this.pump();
    });
  }

  send(obj, prefix = '') { this.sock.write(prefix + JSON.stringify(obj) + '\n', 'latin1'); }
  close() { this.sock.destroy(); }
}

// The agent is in sync when it echoes our id after a 0xFF byte (guest-sync-delimited). The 0xFF byte we
// send first makes it drop half a command left by an earlier client; a fresh id per try tells our answer
// from those to syncs sent while the agent was not running yet (QEMU holds them until it opens the port).
async function qgaSync(file) {
  let s;
  try { s = await JsonSocket.connect(file); } catch { return null; }
  const id = Math.floor(Math.random() * 2 ** 31);
  s.sock.write(Buffer.from([0xff]));
  s.send({ execute: 'guest-sync-delimited', arguments: { id } });
  const deadline = Date.now() + 3000;
  for (;;) {
    const rest = deadline - Date.now();
    const msg = rest > 0 ? await s.next(rest, false) : null;
    if (msg === null) { s.close(); return null; }
    if (msg.return === id) return s;
  }
}

async function qga(s, execute, timeoutMs = 5000) {
  s.send({ execute });
  const msg = await s.next(timeoutMs, false);
  if (msg === null) throw new Error(`${execute}: no answer in ${timeoutMs} ms`);
  if (msg.error) throw new Error(`${execute}: ${msg.error.class}: ${msg.error.desc}`);
  return msg.return;
}

async function ssh(dir, port, cmd, timeoutS = 10) {
  const { stdout } = await run('ssh', ['-i', path.join(dir, 'key'), '-p', String(port),
    '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
    '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${timeoutS}`, '-o', 'LogLevel=ERROR',
    `${USER}@127.0.0.1`, cmd], { timeout: (timeoutS + 20) * 1000 });
  return stdout;
}

async function main() {
  if (!existsSync(image)) throw new Error(`no image at ${image}: run test/distro/build-debian.sh first`);
  await hostTools();
  const dir = await mkdtemp(path.join(tmpdir(), 'grove-boot-check-'));
  let qemu = null;
  let exited = null;
  const result = { image, smp, memoryMB, seedFormat, checks: {} };
  try {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'grove-boot-check', '-f', path.join(dir, 'key')]);
    const seed = await makeSeed(dir, await readFile(path.join(dir, 'key.pub'), 'utf8'));
    const disk = path.join(dir, 'disk.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, disk]);
    const port = await freePort();
    const qmpSock = path.join(dir, 'qmp.sock');
    const qgaSock = path.join(dir, 'qga.sock');
    const consoleLog = path.join(dir, 'console.log');
    const argv = [
      '-machine', 'q35,accel=tcg', '-cpu', 'max', '-smp', String(smp), '-m', `${memoryMB}M`,
      '-nodefaults', '-no-user-config', '-display', 'none',
      '-chardev', `socket,id=qmp,path=${qmpSock},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control',
      '-chardev', `file,id=serial0,path=${consoleLog}`, '-serial', 'chardev:serial0',
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', `socket,id=qga0,path=${qgaSock},server=on,wait=off`,
      '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-blockdev', `driver=file,filename=${disk},node-name=disk0-file,discard=unmap`,
      '-blockdev', 'driver=qcow2,file=disk0-file,node-name=disk0,discard=unmap',
      '-device', 'virtio-blk-pci,drive=disk0,id=disk0-dev,bootindex=1',
      '-blockdev', `driver=file,filename=${seed},node-name=seed0-file,read-only=on`,
      '-blockdev', 'driver=raw,file=seed0-file,node-name=seed0,read-only=on',
      '-device', 'virtio-blk-pci,drive=seed0,id=seed0-dev',
      '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device', 'virtio-net-pci,netdev=net0,id=net0-dev,romfile=',
    ];
    await writeFile(path.join(dir, 'qemu-argv.txt'), argv.join('\n') + '\n');
    t0 = Date.now();
    qemu = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    // Interrupted: take QEMU and the temp dir along.
    for (const sig of ['SIGINT', 'SIGTERM']) {
      process.once(sig, () => {
        if (!exited) qemu.kill('SIGKILL');
        if (!keep) rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
    }
    let qemuErr = '';
    qemu.stderr.on('data', (d) => { qemuErr += d; });
    const exitP = new Promise((r) => qemu.once('exit', (code, signal) => { exited = { code, signal }; r(exited); }));
    step(`QEMU started (pid ${qemu.pid}, TCG, ${smp} vCPU, ${memoryMB} MiB, ssh on 127.0.0.1:${port}, dir ${dir})`);

    // Wall-clock seconds since QEMU started, and the CPU seconds QEMU used by then: on a busy host the
    // CPU figure is the steadier measure of the guest's own boot cost.
    const timings = {};
    const cpu = {};
    const t = () => Number(since());
    const mark = (name) => { timings[name] = t(); cpu[name] = qemuCpuSeconds(qemu.pid); };
    const serial = watchConsole(consoleLog, (name, line) => {
      mark(name);
      if (name === 'cloudInitFinished' || name === 'kernel') step(`serial: ${line.slice(0, 110)}`);
    });
    const deadline = t0 + BOOT_TIMEOUT_MS;
    const alive = () => { if (exited) throw new Error(`QEMU exited early (${JSON.stringify(exited)}): ${qemuErr.trim()}`); };
    let agent = null;
    let sshOut = '';
    // Poll the three readiness signals side by side, each recorded the first time it is seen.
    while (!(timings.cloudInitFinished && timings.agentHostname && timings.ssh)) {
      alive();
      if (Date.now() > deadline) {
        const missing = ['cloudInitFinished', 'agentHostname', 'ssh'].filter((k) => !timings[k]);
        throw new Error(`not ready after ${BOOT_TIMEOUT_MS / 1000} s: ${missing.join(', ')}`);
      }
      if (!timings.agentHostname) {
        agent ??= await qgaSync(qgaSock);
        if (agent && !timings.agent) {
          await qga(agent, 'guest-ping');
          mark('agent');
          step('agent answers guest-sync-delimited and guest-ping');
        }
        if (agent) {
          const name = (await qga(agent, 'guest-get-host-name'))['host-name'];
          if (name === HOSTNAME) { mark('agentHostname'); step(`agent guest-get-host-name: ${name}`); }
        }
      }
      if (!timings.ssh) {
        try {
          sshOut = (await ssh(dir, port, 'hostname', 5)).trim();
          if (sshOut === HOSTNAME) { mark('ssh'); step(`ssh ${USER}@127.0.0.1 -p ${port} hostname: ${sshOut}`); }
        } catch { /* not up yet */ }
      }
      await sleep(500);
    }
    serial.stop();
    result.timings = timings;
    result.qemuCpuSeconds = cpu;
    result.checks.cloudInitFinished = serial.seen.cloudInitFinished;
    result.checks.agentHostname = HOSTNAME;
    result.checks.sshHostname = sshOut;

    // Inside the guest: cloud-init done without errors, no failed units, the agent and sshd running.
    const status = await ssh(dir, port, [
      'cloud-init status --long',
      'echo "cloud-init-log-warnings: $(grep -cE \'\\[(WARNING|ERROR|CRITICAL)\\]\' /var/log/cloud-init.log)"',
      'echo "failed-units: $(systemctl --failed --no-legend --plain | wc -l)"',
      'systemctl is-active qemu-guest-agent ssh',
      'systemd-analyze',
    ].join('; '));
    await writeFile(path.join(dir, 'guest-status.txt'), status);
    if (!/^status: done$/m.test(status)) throw new Error(`cloud-init status is not done:\n${status}`);
    if (/^errors:\s*\S/m.test(status) && !/^errors: \[\]$/m.test(status)) throw new Error(`cloud-init reported errors:\n${status}`);
    if (!/^cloud-init-log-warnings: 0$/m.test(status)) throw new Error(`warnings in /var/log/cloud-init.log:\n${status}`);
    if (!/^failed-units: 0$/m.test(status)) throw new Error(`failed systemd units:\n${status}`);
    if ((status.match(/^active$/gm) ?? []).length !== 2) throw new Error(`agent or sshd not active:\n${status}`);
    result.checks.guestStatus = status.trim().split('\n');
    step(`guest: ${status.trim().split('\n').filter((l) => /^status:|^cloud-init-log|^failed-units|^Startup/.test(l)).join('; ')}`);

    // Where the boot time went, for a look (costs half a minute of guest CPU under TCG, so only on --keep).
    if (keep) {
      await writeFile(path.join(dir, 'guest-analyze.txt'), await ssh(dir, port,
        'systemd-analyze critical-chain --no-pager; systemd-analyze blame --no-pager | head -25; sudo cloud-init analyze blame | head -20; sudo cat /var/log/cloud-init.log', 60));
    }

    // ACPI power button through QMP; systemd shuts down and QEMU exits by itself.
    const qmp = await JsonSocket.connect(qmpSock);
    await qmp.next(5000); // greeting
    qmp.send({ execute: 'qmp_capabilities' });
    if (!(await qmp.next(5000))?.return) throw new Error('QMP qmp_capabilities failed');
    const downAt = Date.now();
    qmp.send({ execute: 'system_powerdown' });
    if (!(await qmp.next(5000))?.return) throw new Error('QMP system_powerdown failed');
    step('QMP system_powerdown sent');
    const end = await Promise.race([exitP, sleep(POWERDOWN_TIMEOUT_MS).then(() => null)]);
    qmp.close();
    if (!end) throw new Error(`QEMU still running ${POWERDOWN_TIMEOUT_MS / 1000} s after system_powerdown`);
    if (end.code !== 0) throw new Error(`QEMU ended with ${JSON.stringify(end)}: ${qemuErr.trim()}`);
    timings.powerdownSeconds = Number(((Date.now() - downAt) / 1000).toFixed(1));
    step(`QEMU exited 0 after the power-down (${timings.powerdownSeconds} s)`);
    agent?.close();
    result.ok = true;
  } finally {
    if (qemu && !exited) qemu.kill('SIGKILL');
    if (keep || !result.ok) log(`kept ${dir} (${(await readdir(dir)).join(' ')})`);
    else await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  const { timings: x } = result;
  const c = result.qemuCpuSeconds;
  log(`PASS: after QEMU start: kernel ${x.kernel} s, agent ready ${x.agent} s, ssh ${x.ssh} s, cloud-init finished ${x.cloudInitFinished} s`);
  log(`      QEMU CPU seconds by then: kernel ${c.kernel}, agent ${c.agent}, ssh ${c.ssh}, cloud-init finished ${c.cloudInitFinished}`);
}

main().catch((e) => {
  log(`FAIL: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
