// Disk resize and screenshots on the real guest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { assertOk, assertProblem, execute, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';

let d: TestDaemon;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.cleanup(); });

const sectors = async (vm: string) => Number((await execute(d, vm, 'cat /sys/block/vda/size')).output.trim());
const GiB_SECTORS = 1024 ** 3 / 512;

test('disk resize: offline with qemu-img, online with QMP; the guest sees it; shrinking refused', async () => {
  await createGuestVm(d, 'grow');
  const off = assertOk(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 2 }), 200, 'offline resize');
  assert.equal(off.diskGB, 2);
  assertProblem(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 2 }), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 1 }), 400, 'VALIDATION_FAILED');
  assertProblem(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 0 }), 400, 'VALIDATION_FAILED');

  await startReady(d, 'grow', { acpi: false });
  assert.equal(await sectors('grow'), 2 * GiB_SECTORS);
  const on = assertOk(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 3 }), 200, 'online resize');
  assert.equal(on.diskGB, 3);
  assert.equal(on.state, 'running');
  assert.equal(await sectors('grow'), 3 * GiB_SECTORS);

});

test('a disk with snapshots grows online and offline; restoring an older snapshot brings back its size and diskGB', async () => {
  // Online: a live snapshot at 3 GiB, then a grow to 4 GiB under the running guest.
  const live = assertOk(await d.call('POST', '/vms/grow/snapshots', { name: 'at3' }), 201, 'live snapshot');
  assert.equal(live.diskGB, 3);
  const on = assertOk(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 4 }), 200, 'online resize with a snapshot');
  assert.equal(on.diskGB, 4);
  assert.equal(await sectors('grow'), 4 * GiB_SECTORS);
  const back = assertOk(await d.call('POST', '/vms/grow/snapshots/at3/restore', {}), 200, 'live restore');
  assert.equal(back.vm.diskGB, 3, 'diskGB follows the restored snapshot');
  assert.equal(back.vm.state, 'running');
  assert.equal(await sectors('grow'), 3 * GiB_SECTORS, 'the guest sees the size it had');
  assert.equal(assertOk(await d.call('GET', '/vms/grow'), 200, 'get').diskGB, 3);

  // Offline: a disk-only snapshot at 3 GiB, a grow to 5 GiB with qemu-img, then a restore.
  assertOk(await d.call('POST', '/vms/grow/stop', { timeoutSeconds: 5, force: true }), 200, 'stop');
  const disk = assertOk(await d.call('POST', '/vms/grow/snapshots', { name: 'off3' }), 201, 'disk snapshot');
  assert.deepEqual([disk.kind, disk.diskGB], ['disk', 3]);
  assert.equal(assertOk(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 5 }), 200, 'offline resize with snapshots').diskGB, 5);
  const snaps = assertOk(await d.call('GET', '/vms/grow/snapshots'), 200, 'list');
  assert.deepEqual(snaps.map((s: any) => [s.name, s.diskGB]), [['at3', 3], ['off3', 3]]);
  const offBack = assertOk(await d.call('POST', '/vms/grow/snapshots/off3/restore', {}), 200, 'disk restore');
  assert.equal(offBack.vm.diskGB, 3);
  await startReady(d, 'grow', { acpi: false });
  assert.equal(await sectors('grow'), 3 * GiB_SECTORS, 'the guest boots on the 3 GiB disk');
  // And it grows again from there, snapshots still in place.
  assert.equal(assertOk(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 4 }), 200, 'grow again').diskGB, 4);
  assert.equal(await sectors('grow'), 4 * GiB_SECTORS);
});

test('screenshot: JPEG by default, PNG on request, JSON with Accept; decodes, has the display size, shows what the guest wrote', async () => {
  await execute(d, 'grow', 'clear > /dev/tty0; for i in 1 2 3 4 5 6 7 8; do echo GROVE-SCREEN-TEST-GROVE-SCREEN-TEST > /dev/tty0; done');

  const j = await fetch(`${d.api}/vms/grow/screenshot`, { headers: { authorization: `Bearer ${d.token}` } });
  assert.equal(j.status, 200);
  assert.equal(j.headers.get('content-type'), 'image/jpeg');
  const jpg = jpeg.decode(Buffer.from(await j.arrayBuffer()), { useTArray: true });

  const p = await fetch(`${d.api}/vms/grow/screenshot?format=png`, { headers: { authorization: `Bearer ${d.token}` } });
  assert.equal(p.headers.get('content-type'), 'image/png');
  const png = PNG.sync.read(Buffer.from(await p.arrayBuffer()));

  const meta = assertOk(await d.call('GET', '/vms/grow/screenshot', undefined, { accept: 'application/json' }), 200, 'json');
  assert.equal(meta.format, 'jpeg');
  assert.ok(meta.width >= 640 && meta.height >= 400, `${meta.width}x${meta.height}`);
  assert.deepEqual([jpg.width, jpg.height], [meta.width, meta.height]);
  assert.deepEqual([png.width, png.height], [meta.width, meta.height]);
  assert.ok(jpeg.decode(Buffer.from(meta.data, 'base64')).width === meta.width);

  // Text on a black screen: a good share of pixels is bright.
  let lit = 0;
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! + png.data[i + 1]! + png.data[i + 2]! > 300) lit++;
  assert.ok(lit > 2000, `only ${lit} bright pixels: the screen looks blank`);

  assertProblem(await d.call('GET', '/vms/grow/screenshot?format=gif'), 400, 'VALIDATION_FAILED');
  assertOk(await d.call('POST', '/vms/grow/force-stop'), 200, 'force-stop');
  assertProblem(await d.call('GET', '/vms/grow/screenshot'), 409, 'INVALID_STATE');
  assert.equal((await d.call('DELETE', '/vms/grow')).status, 204);
});
