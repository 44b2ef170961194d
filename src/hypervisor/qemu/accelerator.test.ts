import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeQemu, type FakeQemu } from '../../../test/fakes/fake-qemu.js';
import { AcceleratorError, chooseAccelerator } from './accelerator.js';

// A readable and writable file stands in for /dev/kvm: only whether it opens matters before the probe.
let dir: string;
let kvmDevice: string;
const fakes: FakeQemu[] = [];
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'grove-accel-test-'));
  kvmDevice = join(dir, 'kvm');
  writeFileSync(kvmDevice, '');
});
after(() => { for (const f of fakes) f.remove(); rmSync(dir, { recursive: true, force: true }); });
const fake = (kind: Parameters<typeof fakeQemu>[0]): FakeQemu => { const f = fakeQemu(kind); fakes.push(f); return f; };

const MSR_REASON = 'KVM probe failed (a test guest with -machine q35,accel=kvm -cpu host): QEMU exited with status 1 before the guest wrote its marker: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69';

test('auto, KVM device that cannot be opened: TCG, and no QEMU is run', async () => {
  const q = fake('marker');
  const missing = join(dir, 'no-kvm');
  const d = await chooseAccelerator('auto', { qemuBinary: q.binary, kvmDevice: missing });
  assert.equal(d.accelerator, 'tcg');
  assert.equal(d.fellBack, true);
  assert.equal(d.why, `${missing} cannot be opened for reading and writing (ENOENT: no such file or directory, access '${missing}'); using TCG`);
  assert.equal(q.ran(), false);
});

test('auto, KVM that cannot set the MSR: TCG, with QEMU\'s error as the reason', async () => {
  const d = await chooseAccelerator('auto', { qemuBinary: fake('msr-error').binary, kvmDevice });
  assert.equal(d.accelerator, 'tcg');
  assert.equal(d.fellBack, true);
  assert.equal(d.why, `${MSR_REASON}; using TCG`);
});

test('auto, KVM whose guest hangs: TCG once the probe times out', async () => {
  const d = await chooseAccelerator('auto', { qemuBinary: fake('hang').binary, kvmDevice, probeTimeoutMs: 500 });
  assert.equal(d.accelerator, 'tcg');
  assert.match(d.why, /^KVM probe failed \(a test guest with -machine q35,accel=kvm -cpu host\): the guest gave no sign of life within 500 ms \(QEMU stopped\); using TCG$/);
});

test('auto, KVM that boots the guest: KVM, saying how it was proven', async () => {
  const d = await chooseAccelerator('auto', { qemuBinary: fake('marker').binary, kvmDevice });
  assert.equal(d.accelerator, 'kvm');
  assert.equal(d.fellBack, false);
  assert.match(d.why, /^KVM probe booted a test guest with -machine q35,accel=kvm -cpu host in \d+ ms$/);
});

test('kvm asked for, probe fails: the choice is refused with the reason and what to do', async () => {
  await assert.rejects(chooseAccelerator('kvm', { qemuBinary: fake('msr-error').binary, kvmDevice }), (e: unknown) => {
    assert.ok(e instanceof AcceleratorError);
    assert.equal(e.message, `accelerator kvm was asked for, but ${MSR_REASON}; use --accel auto (or tcg) to run VMs under TCG`);
    return true;
  });
});

test('kvm asked for, KVM device missing: refused without running QEMU', async () => {
  const q = fake('marker');
  await assert.rejects(chooseAccelerator('kvm', { qemuBinary: q.binary, kvmDevice: join(dir, 'no-kvm') }), AcceleratorError);
  assert.equal(q.ran(), false);
});

test('kvm asked for and proven: KVM', async () => {
  const d = await chooseAccelerator('kvm', { qemuBinary: fake('marker').binary, kvmDevice });
  assert.equal(d.accelerator, 'kvm');
  assert.match(d.why, /^configured \(kvm\); KVM probe booted a test guest/);
});

test('tcg asked for: TCG, no probe', async () => {
  const q = fake('msr-error');
  const d = await chooseAccelerator('tcg', { qemuBinary: q.binary, kvmDevice });
  assert.deepEqual(d, { accelerator: 'tcg', why: 'configured (tcg)', fellBack: false, probeMs: null });
  assert.equal(q.ran(), false);
});
