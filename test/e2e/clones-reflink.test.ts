// Clones on a filesystem that shares blocks: the daemon's data directory lives on a loop-mounted XFS
// (reflink on by default), so a clone is a reflink of the top layer — no shared base, blocks shared.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, realpathSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/util/run.js';
import { readBackingName } from '../../src/storage/qcow2-header.js';
import { assertOk, catFile, execute, getVm, qemuPidsOf, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { readEvents } from '../helpers/events.js';

let d: TestDaemon | undefined;
const work = mkdtempSync(join(tmpdir(), 'grove-xfs-'));
const image = join(work, 'xfs.img');
const mnt = join(work, 'mnt');

async function sh(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args, 60_000);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** Why no reflink filesystem could be set up here (null: it was). */
let unavailable: string | null = null;

before(async () => {
  // Needs xfsprogs (`make test` installs it) and the right to loop-mount (root, loop devices): a machine
  // without them cannot host this test, which says so rather than fail for a reason that is not Grove's.
  try {
    await sh('truncate', ['-s', '3G', image]);
    await sh('mkfs.xfs', ['-q', '-m', 'reflink=1', image]);
    await sh('mkdir', ['-p', mnt]);
    await sh('mount', ['-o', 'loop', image, mnt]);
  } catch (e) {
    unavailable = `no loop-mounted XFS here (${(e as Error).message.split('\n')[0]})`;
    return;
  }
  d = await startDaemon({ dataDir: join(mnt, 'data') });
});
after(async () => {
  try {
    await d?.cleanup();
  } finally {
    await run('umount', [mnt], 60_000).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
});

const api = () => d!;
const freeBytes = () => { const s = statfsSync(mnt); return s.bavail * s.bsize; };
const topOf = (id: string) => realpathSync(join(api().dataDir, 'vms', id, 'disk.qcow2'));

test('on a reflink filesystem a clone shares blocks with the source and freezes no base', async (t) => {
  if (unavailable !== null) { t.skip(unavailable); return; }
  const src = await createGuestVm(api(), 'rl-src');
  await startReady(api(), 'rl-src', { acpi: false });
  // 48 MiB of data clusters in the source's qcow2.
  await execute(api(), 'rl-src', 'dd if=/dev/zero of=/mnt/disk/blob bs=1M count=48 2>/dev/null; echo v1 > /mnt/disk/f; sync', { timeoutSeconds: 120 });
  assertOk(await api().call('POST', '/vms/rl-src/snapshots', { name: 'live-1' }), 201, 'live snapshot');
  const [pid] = qemuPidsOf(src.id);
  const srcTopBefore = topOf(src.id);

  const free = freeBytes();
  const c = assertOk(await api().call('POST', '/vms/rl-src/clone', { name: 'rl-clone' }), 201, 'clone while running');
  const used = free - freeBytes();
  assert.ok(used < 16 * 1024 * 1024, `a reflink costs no data blocks (used ${used} bytes for a ${lstatSync(srcTopBefore).size}-byte layer)`);

  const created = (await readEvents(api())).filter((e) => e.type === 'vm.created' && e.vmName === 'rl-clone').at(-1)!;
  assert.equal(created.data.method, 'reflink');
  assert.equal(topOf(src.id), srcTopBefore, 'the source stays on its own layer: no base was frozen');
  assert.equal(await readBackingName(topOf(c.id)), null, 'the clone stands alone');
  assert.deepEqual(qemuPidsOf(src.id), [pid]);
  assert.equal((await getVm(api(), 'rl-src')).state, 'running', 'paused for the reflink, then resumed');

  // The clone has the disk and the source's snapshots; each VM changes only itself.
  const snaps = assertOk(await api().call('GET', '/vms/rl-clone/snapshots'), 200, 'clone snapshots');
  assert.deepEqual(snaps.map((s: { name: string }) => s.name), ['live-1']);
  await startReady(api(), 'rl-clone', { acpi: false });
  assert.equal(await catFile(api(), 'rl-clone', '/mnt/disk/f'), 'v1\n');
  await execute(api(), 'rl-clone', 'echo clone > /mnt/disk/f; sync');
  assert.equal(await catFile(api(), 'rl-src', '/mnt/disk/f'), 'v1\n');
  // The copied live snapshot restores in the clone (RAM and disk of the source at that moment).
  assertOk(await api().call('POST', '/vms/rl-clone/snapshots/live-1/restore', {}), 200, 'restore copied live snapshot');
  assert.equal(await catFile(api(), 'rl-clone', '/mnt/disk/f'), 'v1\n');

  for (const vm of ['rl-src', 'rl-clone']) assertOk(await api().call('DELETE', `/vms/${vm}?force=true`), 204, `delete ${vm}`);
  assert.deepEqual(readdirSync(join(api().dataDir, 'disks')).filter((f) => f.endsWith('.qcow2')), []);
});
