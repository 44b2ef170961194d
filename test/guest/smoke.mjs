#!/usr/bin/env node
// Smoke test for the test guest built by test/guest/build.sh (no deps, TCG).
//   node test/guest/smoke.mjs [guest-dir]
// Boots the guest twice on one qcow2 disk and checks: ready line + boot time,
// shell echo, Ctrl-C on a foreground job, /mnt/disk mounted and persistent,
// DHCP on eth0, QMP system_powerdown -> QEMU exits (time measured).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const guest = process.argv[2] ?? process.env.GROVE_GUEST_DIR ?? path.join(here, '../../.cache/test-guest');
const work = mkdtempSync(path.join(os.tmpdir(), 'grove-guest-smoke-'));
const disk = path.join(work, 'disk.qcow2');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const READY = 'GROVE-GUEST-READY';
let failures = 0;
const live = new Set(); // QEMU processes to kill on failure
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };

async function connect(sock, timeoutMs = 5000) {
  const t0 = Date.now();
  for (;;) {
    try {
      return await new Promise((res, rej) => {
        const c = net.connect(sock, () => res(c));
        c.once('error', rej);
      });
    } catch (e) {
      if (Date.now() - t0 > timeoutMs) throw e;
      await sleep(10);
    }
  }
}

async function boot(n) {
  const dir = path.join(work, `boot${n}`);
  execFileSync('mkdir', ['-p', dir]);
  const args = [
    '-accel', 'tcg', '-machine', 'q35', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-kernel', path.join(guest, 'vmlinuz'), '-initrd', path.join(guest, 'initramfs.gz'),
    '-append', readFileSync(path.join(guest, 'cmdline'), 'utf8').trim(),
    '-chardev', `socket,id=s0,path=${dir}/console.sock,server=on,wait=off,logfile=${dir}/console.log`,
    '-serial', 'chardev:s0',
    '-qmp', `unix:${dir}/qmp.sock,server=on,wait=off`,
    '-device', 'virtio-blk-pci,drive=d0',
    '-blockdev', `driver=file,filename=${disk},node-name=f0`,
    '-blockdev', 'driver=qcow2,file=f0,node-name=d0',
    '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'VGA',
  ];
  const t0 = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  live.add(qemu);
  const exited = new Promise((res) => qemu.on('exit', (code, sig) => { live.delete(qemu); res({ code, sig, t: Date.now() }); }));
  const con = await connect(`${dir}/console.sock`);
  let buf = '';
  con.on('data', (d) => { buf += d.toString('latin1'); });
  let mark = 0; // expect() only looks at output after `mark`
  const expect = async (re, timeoutMs = 10000) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(buf.slice(mark));
      if (m) { mark += m.index + m[0].length; return m; }
      if (Date.now() > end) throw new Error(`timeout waiting for ${re}; tail: ${JSON.stringify(buf.slice(-300))}`);
      await sleep(10);
    }
  };
  const send = (s) => con.write(s);
  // busybox ash line editing appends ESC[6n (cursor position query) to the prompt
  const PROMPT = /grove# (\x1b\[6n)?$/;
  // run a command, return its output (between the echoed command and the prompt)
  const run = async (cmd, timeoutMs = 10000) => {
    await sleep(50); mark = buf.length;
    send(cmd + '\r');
    await expect(new RegExp(`${cmd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r?\\n`), timeoutMs);
    const start = mark;
    await expect(PROMPT, timeoutMs);
    return buf.slice(start, mark).replace(/\r?\n?grove# (\x1b\[6n)?$/, '').replace(/\r/g, '');
  };

  await expect(new RegExp(`(^|\\n)${READY}\\r?\\n`), 60000);
  const bootMs = Date.now() - t0;
  console.log(`boot ${n}: ready after ${bootMs} ms`);
  await expect(PROMPT);
  return { qemu, exited, dir, con, run, send, expect, PROMPT, bootMs, buf: () => buf, setMark: () => { mark = buf.length; } };
}

async function powerdown(vm) {
  const q = await connect(`${vm.dir}/qmp.sock`);
  let qb = '';
  q.on('data', (d) => { qb += d; });
  const waitQ = async (s) => { while (!qb.includes(s)) await sleep(5); };
  await waitQ('"QMP"');
  q.write('{"execute":"qmp_capabilities"}\n');
  await waitQ('"return"');
  const t0 = Date.now();
  q.write('{"execute":"system_powerdown"}\n');
  const r = await Promise.race([vm.exited, sleep(15000).then(() => null)]);
  if (!r) { vm.qemu.kill('SIGKILL'); return null; }
  return { ms: r.t - t0, code: r.code };
}

try {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '1G']);

  // ---- boot 1 (blank disk -> formatted) ----
  let vm = await boot(1);
  const log1 = readFileSync(`${vm.dir}/console.log`, 'latin1');
  check(log1.split(/\r?\n/).filter((l) => l === READY).length === 1, 'exactly one ready line in console.log');
  check((await vm.run('echo hi')) === 'hi', 'echo hi');
  check((await vm.run('hostname')) === 'grove-guest', 'hostname');
  check((await vm.run('tty')) === '/dev/ttyS0', 'shell on /dev/ttyS0');
  check(/m/.test(await vm.run('echo $-')), 'job control (set -m) on');
  check(/\/dev\/vda on \/mnt\/disk type ext[234]/.test(await vm.run('mount | grep /mnt/disk')), '/mnt/disk mounted');
  // Ctrl-C on a foreground job
  vm.setMark(); vm.send('sleep 100\r');
  await vm.expect(/sleep 100\r?\n/);
  await sleep(500);
  const tc = Date.now();
  vm.send('\x03');
  await vm.expect(vm.PROMPT, 5000);
  console.log(`Ctrl-C returned to the prompt after ${Date.now() - tc} ms`);
  check((await vm.run('echo rc=$?')) === 'rc=130', 'sleep killed by SIGINT (rc=130)');
  // exit: shell respawns
  vm.setMark(); vm.send('echo bye; exit 3\r');
  await vm.expect(/bye\r?\n/);
  await vm.expect(vm.PROMPT);
  check((await vm.run('echo again')) === 'again', 'shell respawned after exit 3');
  check((await vm.run('echo ' + 'x'.repeat(200))) === 'x'.repeat(200), '200-char command line round-trips');
  check((await vm.run('printf "%s\\n" marker-$((6*7)) > /mnt/disk/marker && sync && cat /mnt/disk/marker')) === 'marker-42', 'wrote marker on /mnt/disk');
  // DHCP (background) should be done by now or shortly
  let ip = '';
  for (let i = 0; i < 20 && !ip.includes('10.0.2.15'); i++) { ip = await vm.run('ip -4 addr show eth0'); if (!ip.includes('10.0.2.15')) await sleep(500); }
  check(ip.includes('10.0.2.15'), 'eth0 got 10.0.2.15 via DHCP');
  check(/button/.test(await vm.run('lsmod')), 'modules loaded');
  let pd = await powerdown(vm);
  check(pd !== null && pd.code === 0, `system_powerdown -> QEMU exited ${pd ? `after ${pd.ms} ms (code ${pd.code})` : 'NOT within 15 s'}`);

  // ---- boot 2 (same disk: marker must persist) ----
  vm = await boot(2);
  check((await vm.run('cat /mnt/disk/marker')) === 'marker-42', 'marker persisted across reboot');
  // powerdown while a foreground command runs
  vm.setMark(); vm.send('sleep 100\r');
  await vm.expect(/sleep 100\r?\n/);
  pd = await powerdown(vm);
  check(pd !== null && pd.code === 0, `system_powerdown (busy shell) -> QEMU exited ${pd ? `after ${pd.ms} ms` : 'NOT within 15 s'}`);
} catch (e) {
  console.error(e);
  failures++;
} finally {
  for (const q of live) q.kill('SIGKILL');
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
console.log(failures ? `${failures} FAILURE(S)` : 'all ok');
process.exit(failures ? 1 : 0);
