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

test('disk resize: offline with qemu-img, online with QMP; the guest sees it; shrinking and snapshots refused', async () => {
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

  assertOk(await d.call('POST', '/vms/grow/snapshots', { name: 's' }), 201, 'snapshot');
  assertProblem(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 4 }), 409, 'CONFLICT');
  assert.equal((await d.call('DELETE', '/vms/grow/snapshots/s')).status, 204);
  assert.equal(assertOk(await d.call('POST', '/vms/grow/disk/resize', { sizeGB: 4 }), 200, 'resize after delete').diskGB, 4);
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
