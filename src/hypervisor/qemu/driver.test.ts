import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { DataLayout } from '../../app/layout.js';
import { DomainError } from '../../domain/errors.js';
import type { Vm } from '../../domain/vm.js';
import type { LaunchSpec } from '../../ports/hypervisor.js';
import { QemuDriver, type QmpConnector } from './driver.js';
import { isAlive, waitForProcessEnd } from './proc-stats.js';

const QEMU = 'qemu-system-x86_64';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const failingAttach: QmpConnector = () => Promise.reject(new Error('injected attach failure'));

/** A real VM folder with a 64 MiB qcow2 disk and no boot files (the firmware just idles); removed after the test. */
async function vmSpec(t: TestContext): Promise<LaunchSpec> {
  const dir = await mkdtemp(join(tmpdir(), 'grove-driver-'));
  // The daemon's own layout, so the test follows every file a VM folder gains.
  const paths = new DataLayout(dir).vmPaths('6f1c1f3e-8c52-4b8a-9d1e-3c1f9a0b2c4d');
  await mkdir(paths.dir, { recursive: true });
  const made = spawnSync('qemu-img', ['create', '-f', 'qcow2', paths.disk, '64M'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  t.after(async () => {
    // Whatever the outcome, no QEMU of this test outlives it.
    const pid = await pidOf(paths.pidFile);
    if (pid !== null && isAlive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const vm: Vm = {
    id: '6f1c1f3e-8c52-4b8a-9d1e-3c1f9a0b2c4d', name: 'attach-fault', state: 'stopped', cpu: 1, memoryMB: 64, diskGB: 1,
    distro: null, boot: {}, network: { mode: 'none', portForwards: [] }, order: 0,
    createdAt: '', updatedAt: '', startedAt: null, accelerator: null, lastError: null, cloudInit: null, autostart: false,
  };
  return { vm, paths, accelerator: 'tcg' };
}

async function pidOf(file: string): Promise<number | null> {
  const n = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** Whether another program can take the disk's write lock (a running QEMU holds it). */
function diskIsFree(disk: string): boolean {
  return spawnSync('qemu-img', ['info', disk], { encoding: 'utf8' }).status === 0;
}

test('launch: when attaching to the new QEMU fails, it is killed before the error is answered and the disk is free', async (t) => {
  const spec = await vmSpec(t);
  const driver = new QemuDriver({ qemuBinary: QEMU, accelerator: 'tcg', log: silent, connectQmp: failingAttach });
  await assert.rejects(driver.launch(spec, 0), (e: unknown) => {
    assert.ok(e instanceof DomainError, String(e));
    assert.equal(e.code, 'QEMU_FAILED');
    assert.match(e.message, /could not attach.*injected attach failure.*stopped/);
    return true;
  });
  const pid = await pidOf(spec.paths.pidFile);
  assert.ok(pid !== null, 'QEMU did start (it wrote its pid file)');
  assert.equal(await waitForProcessEnd(pid, 0), true, 'the QEMU is gone when launch answers');
  assert.equal(diskIsFree(spec.paths.disk), true, 'its disk lock is released');
});

test('adopt: a running QEMU that cannot be attached is killed and not adopted', async (t) => {
  const spec = await vmSpec(t);
  const running = await new QemuDriver({ qemuBinary: QEMU, accelerator: 'tcg', log: silent }).launch(spec, 0);
  const pid = running.pid;
  running.detach();
  assert.equal(isAlive(pid), true);
  assert.equal(diskIsFree(spec.paths.disk), false, 'a running QEMU holds the disk lock (the check below means something)');

  const adopted = await new QemuDriver({ qemuBinary: QEMU, accelerator: 'tcg', log: silent, connectQmp: failingAttach }).adopt(spec, 0);
  assert.equal(adopted, null);
  assert.equal(await waitForProcessEnd(pid, 0), true, 'the QEMU is gone when adopt answers');
  assert.equal(diskIsFree(spec.paths.disk), true);
});
