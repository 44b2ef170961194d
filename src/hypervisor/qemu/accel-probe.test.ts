import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeQemu, type FakeQemu, type FakeQemuKind } from '../../../test/fakes/fake-qemu.js';
import { isAlive, waitForExit } from '../../../test/helpers/api.js';
import { probeAccelerator, type AccelProbeResult } from './accel-probe.js';
import { PROBE_MARKER, probeBootSector } from './probe-guest.js';

// The probe's temporary files go to TMPDIR: a private one shows that none are left behind.
let scratch: string;
const savedTmp = process.env['TMPDIR'];
before(() => { scratch = mkdtempSync(join(tmpdir(), 'grove-probe-test-')); process.env['TMPDIR'] = scratch; });
after(() => {
  if (savedTmp === undefined) delete process.env['TMPDIR']; else process.env['TMPDIR'] = savedTmp;
  rmSync(scratch, { recursive: true, force: true });
});

async function probeWith(kind: FakeQemuKind, timeoutMs = 3000): Promise<{ fake: FakeQemu; result: AccelProbeResult }> {
  const fake = fakeQemu(kind);
  const result = await probeAccelerator({ qemuBinary: fake.binary, accelerator: 'kvm', timeoutMs });
  assert.deepEqual(readdirSync(scratch).filter((f) => f.startsWith('grove-accel-probe-')), [], 'probe files removed');
  return { fake, result };
}

const failure = (r: AccelProbeResult): string => {
  assert.equal(r.ok, false);
  return r.ok ? '' : r.reason;
};

test('the boot sector: 512 bytes, the BIOS signature, and its string pointer lands on the marker', () => {
  const s = probeBootSector();
  assert.equal(s.length, 512);
  assert.deepEqual([s[510], s[511]], [0x55, 0xaa]);
  const si = s.indexOf(0xbe); // mov si, imm16
  const target = s.readUInt16LE(si + 1) - 0x7c00;
  assert.equal(s.toString('latin1', target, target + PROBE_MARKER.length), PROBE_MARKER);
});

test('a QEMU that fails setting an MSR: the probe fails with its error line, not its warning', async () => {
  const { fake, result } = await probeWith('msr-error');
  assert.equal(failure(result), 'QEMU exited with status 1 before the guest wrote its marker: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69');
  fake.remove();
});

test('a QEMU that aborts after failing to set an MSR (what QEMU 7.2 does on a nested host): the probe fails with its error line', async () => {
  const { fake, result } = await probeWith('msr-abort');
  assert.equal(failure(result), 'QEMU was killed by SIGABRT: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69');
  fake.remove();
});

test('a QEMU that hangs: the probe gives up at its time limit and ends QEMU and what it started', async () => {
  const { fake, result } = await probeWith('hang', 1500);
  assert.match(failure(result), /^the guest gave no sign of life within 1500 ms \(QEMU stopped\)$/);
  const pids = fake.pids();
  assert.equal(pids.length, 2, 'the fake and its child both started');
  for (const pid of pids) await waitForExit(pid, 5000);
  assert.deepEqual(pids.filter(isAlive), []);
  fake.remove();
});

test('a QEMU that runs but whose guest never writes the marker: the probe fails', async () => {
  const { fake, result } = await probeWith('no-marker');
  assert.equal(failure(result), 'QEMU exited with status 0 before the guest wrote its marker');
  fake.remove();
});

test('a QEMU binary that does not exist: the probe fails saying it cannot run it', async () => {
  const missing = join(scratch, 'no-such-qemu');
  const result = await probeAccelerator({ qemuBinary: missing, accelerator: 'kvm' });
  assert.equal(failure(result), `cannot run ${missing}: spawn ${missing} ENOENT`);
});

test('a guest that writes the marker and exits through isa-debug-exit: the probe passes, with the VMs\' machine and CPU', async () => {
  const { fake, result } = await probeWith('marker');
  assert.equal(result.ok, true);
  const argv = fake.argv();
  const value = (flag: string) => argv[argv.indexOf(flag) + 1];
  assert.equal(value('-machine'), 'q35,accel=kvm');
  assert.equal(value('-cpu'), 'host');
  assert.ok(argv.includes('isa-debug-exit,iobase=0x501,iosize=2'));
  fake.remove();
});
