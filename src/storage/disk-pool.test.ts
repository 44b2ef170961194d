import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataLayout } from '../app/layout.js';
import { FileDiskPool } from './disk-pool.js';
import { QemuImg } from './qemu-img.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
let root = '';
let layout: DataLayout;
let pool: FileDiskPool;
const disks = new QemuImg('qemu-img');
const placesOf = (l: DataLayout) => ({ vms: l.vms, disks: l.disks, diskOf: (id: string) => l.vmPaths(id).disk });

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'grove-pool-'));
  layout = new DataLayout(root);
  await mkdir(layout.vms, { recursive: true });
  await mkdir(layout.disks, { recursive: true });
  pool = new FileDiskPool({ places: placesOf(layout), disks, log: quiet });
});
after(async () => { await rm(root, { recursive: true, force: true }); });

async function vmWithDisk(id: string): Promise<string> {
  await mkdir(layout.vmDir(id), { recursive: true });
  await disks.create(layout.vmPaths(id).disk, 1);
  return layout.vmPaths(id).disk;
}

test('adopt moves a VM disk into the pool behind a relative link, once', async () => {
  const disk = await vmWithDisk('a');
  const layer = await pool.adopt('a');
  assert.ok((await lstat(disk)).isSymbolicLink());
  assert.equal(await readlink(disk), join('..', '..', 'disks', layer.split('/').at(-1)!));
  assert.equal(await pool.adopt('a'), layer, 'a second adopt changes nothing');
  assert.deepEqual(await pool.top('a'), { path: layer, pooled: true });
});

test('collect keeps every layer a VM chain reaches and pinned new layers; removes the rest', async () => {
  const base = await pool.adopt('a');
  const top = pool.reserve();
  await disks.createOverlay(top.path, pool.backingName(base), 1024 ** 3);
  const pinned = pool.reserve();
  await disks.createOverlay(pinned.path, pool.backingName(base), 1024 ** 3);
  const orphan = pool.reserve();
  await writeFile(orphan.path, 'orphan');
  orphan.release();
  await pool.point(layout.vmPaths('a').disk, top.path);
  top.release();
  assert.deepEqual(await pool.chain(top.path), [top.path, base]);

  const removed = await pool.collect();
  assert.deepEqual(removed.map((f) => f.split('/').at(-1)), [orphan.path.split('/').at(-1)]);
  assert.ok(existsSync(base) && existsSync(top.path) && existsSync(pinned.path));
  pinned.release();
  assert.equal((await pool.collect()).length, 1, 'unpinned and unreachable: collected');
});

test('a header that cannot be read stops the collection before anything is removed', async () => {
  await mkdir(layout.vmDir('broken'), { recursive: true });
  const bad = pool.reserve();
  await writeFile(bad.path, 'not a qcow2');
  await pool.point(layout.vmPaths('broken').disk, bad.path);
  bad.release();
  const stray = pool.reserve();
  await writeFile(stray.path, 'unreferenced');
  stray.release();
  await assert.rejects(pool.collect(), /not a qcow2 image/);
  assert.ok(existsSync(stray.path), 'nothing removed while the picture is incomplete');
});

test('a dangling disk link stops the collection: what it needed cannot be known', async () => {
  await rm(layout.vmDir('broken'), { recursive: true, force: true });
  await mkdir(layout.vmDir('lost'), { recursive: true });
  const gone = pool.reserve();
  await pool.point(layout.vmPaths('lost').disk, gone.path);
  gone.release();
  const stray = pool.reserve();
  await writeFile(stray.path, 'unreferenced');
  stray.release();
  await assert.rejects(pool.collect(), /ENOENT/);
  assert.ok(existsSync(stray.path));
  await rm(layout.vmDir('lost'), { recursive: true, force: true });
  await pool.collect();
  assert.ok(!existsSync(stray.path));
});

test('a layer linked while a collection is reading the VM folders survives it', async () => {
  // The collection is held inside its scan (reading VM a's chain) while VM b is created and linked.
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  let entered!: () => void;
  const inScan = new Promise<void>((r) => { entered = r; });
  const slow: QemuImg = Object.create(disks) as QemuImg;
  slow.backingName = async (p: string) => { entered(); await gate; return disks.backingName(p); };
  const racing = new FileDiskPool({ places: placesOf(layout), disks: slow, log: quiet });
  const collecting = racing.collect();
  await inScan;
  const disk = await vmWithDisk('b');
  const layer = await racing.adopt('b');
  assert.ok(existsSync(layer) && (await lstat(disk)).isSymbolicLink());
  open();
  await collecting;
  assert.ok(existsSync(layer), 'the new layer was pinned while the collection ran');
  assert.deepEqual(await racing.collect(), [], 'and is reachable from then on');
});

test('an image base: a read-only hard link named by the digest, made once, shared, kept when the image goes, collected with its last VM', async () => {
  const images = join(root, 'images');
  await mkdir(images, { recursive: true });
  const image = join(images, 'cloud.qcow2');
  await disks.create(image, 2);
  const source = { path: image, format: 'qcow2' as const, algorithm: 'sha256' as const, digest: 'ab'.repeat(32) };
  const first = await pool.imageBase(source);
  assert.equal(first.path, join(layout.disks, `image-sha256-${'ab'.repeat(32)}.qcow2`));
  assert.equal(statSync(first.path).ino, statSync(image).ino, 'a hard link, not a copy');
  assert.equal(statSync(first.path).mode & 0o777, 0o444);
  const second = await pool.imageBase(source);
  assert.equal(second.path, first.path, 'one base per digest');

  await mkdir(layout.vmDir('img-vm'), { recursive: true });
  const top = pool.reserve();
  await disks.createOverlay(top.path, pool.backingName(first.path), 8 * 1024 ** 3);
  await pool.point(layout.vmPaths('img-vm').disk, top.path);
  for (const p of [top, first, second]) p.release();
  await rm(image);
  await pool.collect();
  assert.ok(existsSync(first.path), 'the VM still needs it, the image is gone');
  assert.deepEqual(await pool.chain(top.path), [top.path, first.path]);

  await rm(layout.vmDir('img-vm'), { recursive: true, force: true });
  const removed = await pool.collect();
  assert.ok(removed.includes(first.path) && !existsSync(first.path), 'collected with its last VM');
  await assert.rejects(pool.imageBase({ ...source, digest: 'not-hex' }), /not a sha256 digest/);
});
