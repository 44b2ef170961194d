// The accelerator choice with the real QEMU: the probe guest boots, and `auto` on this host picks what works.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { probeAccelerator } from '../../src/hypervisor/qemu/accel-probe.js';
import { MACHINE_TYPE, cpuModel } from '../../src/hypervisor/qemu/config/argv.js';
import { assertOk, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE, guestFiles } from '../helpers/guest.js';

const QEMU = process.env['GROVE_QEMU'] ?? 'qemu-system-x86_64';

/**
 * What this host's KVM can do, found without Grove's probe: boot the test guest's Linux kernel by hand with
 * the VMs' machine type and KVM CPU model (`-machine q35,accel=kvm -cpu host`) and wait for its ready line. Nested hosts fail at once
 * ("failed to set MSR 0x10a") or hang; a working KVM gets there in about a second.
 */
async function kvmBootsLinux(): Promise<{ kvmDevice: boolean; boots: boolean }> {
  try { accessSync('/dev/kvm', constants.R_OK | constants.W_OK); } catch { return { kvmDevice: false, boots: false }; }
  const g = guestFiles();
  const qemu = spawn(QEMU, [
    '-machine', `${MACHINE_TYPE},accel=kvm`, '-cpu', cpuModel('kvm'), '-m', '256M', '-nodefaults', '-no-user-config', '-display', 'none',
    '-kernel', g.kernel, '-initrd', g.initrd, '-append', g.cmdline, '-serial', 'stdio',
  ], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  const boots = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    qemu.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes(READY_LINE)) { clearTimeout(timer); resolve(true); } });
    qemu.once('exit', () => { clearTimeout(timer); resolve(out.includes(READY_LINE)); });
  });
  qemu.kill('SIGKILL');
  return { kvmDevice: true, boots };
}

let kvm: { kvmDevice: boolean; boots: boolean };
before(async () => { kvm = await kvmBootsLinux(); });

test('the probe guest boots under the real QEMU with TCG: it writes its marker and exits as planned', async () => {
  const r = await probeAccelerator({ qemuBinary: QEMU, accelerator: 'tcg' });
  assert.deepEqual(r.ok ? 'ok' : r.reason, 'ok');
});

test('the probe under KVM agrees with booting Linux under KVM by hand', async () => {
  const r = await probeAccelerator({ qemuBinary: QEMU, accelerator: 'kvm' });
  assert.equal(r.ok, kvm.boots, r.ok ? 'probe passed' : r.reason);
});

let d: TestDaemon | undefined;
after(async () => { await d?.cleanup(); });

test('the daemon with --accel auto: GET /host names the accelerator that boots, and why; a VM starts under it', async (t) => {
  d = await startDaemon({ env: { GROVE_ACCEL: 'auto' } });
  const host = assertOk(await d.call('GET', '/host'), 200, 'host');
  const logLine = d.output().split('\n').find((l) => l.includes('"msg":"accelerator chosen"'));
  assert.ok(logLine, 'the choice is logged');
  const chosen = JSON.parse(logLine);
  assert.equal(chosen.why, host.acceleratorReason);
  t.diagnostic(`KVM boots Linux here: ${kvm.boots}; chosen ${host.accelerator}: ${host.acceleratorReason}; probe took ${chosen.probeMs} ms`);
  if (kvm.boots) {
    assert.equal(host.accelerator, 'kvm');
    assert.match(host.acceleratorReason, /^KVM probe booted a test guest with -machine q35,accel=kvm -cpu host in \d+ ms$/);
  } else {
    assert.equal(host.accelerator, 'tcg');
    assert.match(host.acceleratorReason, kvm.kvmDevice
      ? /^KVM probe failed \(a test guest with -machine q35,accel=kvm -cpu host\): .+; using TCG$/
      : /^\/dev\/kvm cannot be opened for reading and writing .+; using TCG$/);
    assert.equal(chosen.level, 40, 'the fallback is logged as a warning');
  }
  await createGuestVm(d, 'acc');
  const started = await startReady(d, 'acc', { acpi: false });
  assert.equal(started.vm.accelerator, host.accelerator);
  assertOk(await d.call('POST', '/vms/acc/force-stop'), 200, 'force-stop');
});

test('the daemon with --accel kvm where KVM cannot boot a guest refuses to start, saying why', async () => {
  // Where KVM works this is the same start as above, which is tested there.
  const outcome = await startDaemon({ env: { GROVE_ACCEL: 'kvm' } }).then(
    async (k) => { await k.cleanup(); return 'started'; },
    (e: unknown) => String(e),
  );
  if (kvm.boots) assert.equal(outcome, 'started');
  else assert.match(outcome, /daemon exited \(1\):[\s\S]*grove serve: cannot start: accelerator kvm was asked for, but .+; use --accel auto \(or tcg\) to run VMs under TCG/);
});
