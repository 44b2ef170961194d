// Export / import: a file written on the VM's disk survives export → import → boot; hostile or broken
// bundles are refused with a 4xx and leave nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { assertOk, assertProblem, execute, startReady } from '../helpers/api.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';

let d: TestDaemon;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.cleanup(); });

async function upload(body: Buffer, type = 'application/x-tar', query = '') {
  const r = await fetch(`${d.api}/vms/import${query}`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': type }, body });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}

type Entry = { name: string; data?: Buffer; type?: 'file' | 'symlink' | 'directory'; linkname?: string; size?: number };
async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'directory') pack.entry({ name: e.name, type: e.type, ...(e.linkname ? { linkname: e.linkname } : {}) });
    else pack.entry({ name: e.name, size: e.data!.length }, e.data!);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let goodManifest: any;
let goodDisk: Buffer;

test('round trip: a file on the disk survives export → import → boot, with snapshot metadata', async () => {
  await createGuestVm(d, 'orig');
  await startReady(d, 'orig', { acpi: false });
  await execute(d, 'orig', 'echo travelled-$((20+22)) > /mnt/disk/f; sync');
  assertProblem(await d.call('POST', '/vms/orig/export', {}), 409, 'INVALID_STATE');
  assertOk(await d.call('POST', '/vms/orig/force-stop'), 200, 'stop');
  assertOk(await d.call('POST', '/vms/orig/snapshots', { name: 'before-export' }), 201, 'snapshot');

  const r = await fetch(`${d.api}/vms/orig/export`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ compression: 'gzip' }) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/gzip');
  assert.match(r.headers.get('content-disposition') ?? '', /orig\.grove\.tar\.gz/);
  const bundle = Buffer.from(await r.arrayBuffer());

  const imported = assertOk(await upload(bundle, 'application/gzip', '?name=copy'), 201, 'import upload');
  assert.equal(imported.name, 'copy');
  assert.equal(imported.cpu, 1);
  assert.deepEqual(assertOk(await d.call('GET', '/vms/copy/snapshots'), 200, 'snaps').map((s: any) => s.name), ['before-export']);
  await startReady(d, 'copy', { acpi: false });
  assert.equal((await execute(d, 'copy', 'cat /mnt/disk/f')).output, 'travelled-42\n');
  assertOk(await d.call('POST', '/vms/copy/force-stop'), 200, 'stop copy');

  // To and from the transfer folder.
  const w = assertOk(await d.call('POST', '/vms/orig/export', { path: 'orig.tar' }), 201, 'export to transfer');
  assert.ok(w.bytes > 0);
  assertProblem(await d.call('POST', '/vms/orig/export', { path: 'orig.tar' }), 409, 'FILE_EXISTS');
  assertProblem(await d.call('POST', '/vms/orig/export', { path: '../escape.tar' }), 403, 'FORBIDDEN_PATH');
  assertProblem(await d.call('POST', '/vms/import', { path: 'orig.tar' }), 409, 'CONFLICT');
  assertOk(await d.call('POST', '/vms/import', { path: 'orig.tar', name: 'copy2' }), 201, 'import from transfer');
  assertProblem(await d.call('POST', '/vms/import', { path: '/etc/passwd' }), 403, 'FORBIDDEN_PATH');

  // Keep the pieces of a valid bundle for the hostile variants below.
  const entries: Record<string, Buffer> = {};
  const extract = tar.extract();
  const done = (async () => { for await (const e of extract) { const c: Buffer[] = []; for await (const x of e) c.push(x as Buffer); entries[e.header.name] = Buffer.concat(c); } })();
  extract.end(readFileSync(join(d.dataDir, 'transfer', 'orig.tar')));
  await done;
  goodManifest = JSON.parse(entries['manifest.json']!.toString());
  goodDisk = entries['disk.qcow2']!;
});

test('hostile and broken bundles are refused with a 4xx and leave nothing behind', async () => {
  const manifestFor = (files: Record<string, Buffer>, patch: (m: any) => void = () => undefined) => {
    const m = structuredClone(goodManifest);
    m.files = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, { size: v.length, sha256: sha(v) }]));
    m.snapshots = [];
    patch(m);
    return Buffer.from(JSON.stringify(m));
  };
  const disk = { 'disk.qcow2': goodDisk };
  const before = (await d.call('GET', '/vms')).body.length;
  const cases: [string, Buffer][] = [
    ['dot-dot path', await makeTar([{ name: 'manifest.json', data: manifestFor(disk) }, { name: '../disk.qcow2', data: goodDisk }])],
    ['absolute path', await makeTar([{ name: 'manifest.json', data: manifestFor(disk) }, { name: '/etc/cron.d/x', data: Buffer.from('x') }])],
    ['symlink', await makeTar([{ name: 'manifest.json', data: manifestFor(disk) }, { name: 'disk.qcow2', type: 'symlink', linkname: '/etc/shadow' }])],
    ['directory', await makeTar([{ name: 'manifest.json', data: manifestFor(disk) }, { name: 'disk.qcow2', type: 'directory' }])],
    ['checksum mismatch', await makeTar([{ name: 'manifest.json', data: manifestFor(disk, (m) => { m.files['disk.qcow2'].sha256 = '0'.repeat(64); }) }, { name: 'disk.qcow2', data: goodDisk }])],
    ['larger than declared', await makeTar([{ name: 'manifest.json', data: manifestFor(disk, (m) => { m.files['disk.qcow2'].size -= 1; }) }, { name: 'disk.qcow2', data: goodDisk }])],
    ['manifest not first', await makeTar([{ name: 'disk.qcow2', data: goodDisk }, { name: 'manifest.json', data: manifestFor(disk) }])],
    ['unlisted extra entry', await makeTar([{ name: 'manifest.json', data: manifestFor(disk) }, { name: 'disk.qcow2', data: goodDisk }, { name: 'kernel', data: Buffer.from('k') }])],
    ['listed file missing', await makeTar([{ name: 'manifest.json', data: manifestFor({ ...disk, kernel: Buffer.from('k') }) }, { name: 'disk.qcow2', data: goodDisk }])],
    ['unknown version', await makeTar([{ name: 'manifest.json', data: manifestFor(disk, (m) => { m.version = 99; }) }, { name: 'disk.qcow2', data: goodDisk }])],
    ['bad vm name', await makeTar([{ name: 'manifest.json', data: manifestFor(disk, (m) => { m.vm.name = '../x'; }) }, { name: 'disk.qcow2', data: goodDisk }])],
    ['cmdline with a newline', await makeTar([{ name: 'manifest.json', data: manifestFor(disk, (m) => { m.vm.cmdline = 'console=ttyS0\ninit=/bin/sh'; }) }, { name: 'disk.qcow2', data: goodDisk }])],
    ['disk is not qcow2', await makeTar([{ name: 'manifest.json', data: manifestFor({ 'disk.qcow2': Buffer.alloc(4096, 7) }) }, { name: 'disk.qcow2', data: Buffer.alloc(4096, 7) }])],
    ['not a tar at all', Buffer.from('this is not a tar archive'.repeat(100))],
    ['empty', Buffer.alloc(0)],
  ];
  for (const [what, body] of cases) {
    const r = await upload(body, 'application/x-tar', `?name=hostile`);
    assert.ok(r.status >= 400 && r.status < 500, `${what}: expected a 4xx, got ${r.status} ${JSON.stringify(r.body)}`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
  }
  assert.equal((await d.call('GET', '/vms')).body.length, before, 'no VM was created');
  assert.deepEqual(readdirSync(join(d.dataDir, 'vms')).filter((n) => n.startsWith('.import')), [], 'no staging folder left');

  // A link planted in transfer/ that points outside is not followed.
  symlinkSync('/etc/passwd', join(d.dataDir, 'transfer', 'link.tar'));
  assertProblem(await d.call('POST', '/vms/import', { path: 'link.tar' }), 403, 'FORBIDDEN_PATH');
  writeFileSync(join(d.dataDir, 'transfer', 'junk.tar'), 'junk');
  assert.equal((await d.call('POST', '/vms/import', { path: 'junk.tar' })).status, 400);
});

test('exports racing to one transfer/ path: exactly one wins (201), the others 409 FILE_EXISTS, the file is the winner\'s', async () => {
  const names = ['orig', 'copy', 'copy2'];
  const results = await Promise.all([...names, 'orig'].map((n) => d.call('POST', `/vms/${n}/export`, { path: 'race.tar' })));
  const won = results.map((r, i) => [r.status, i] as const).filter(([status]) => status === 201);
  assert.equal(won.length, 1, JSON.stringify(results.map((r) => [r.status, r.body?.code])));
  for (const r of results) if (r.status !== 201) assertProblem(r, 409, 'FILE_EXISTS');
  const winner = [...names, 'orig'][won[0]![1]];
  const extract = tar.extract();
  let manifest: any = null;
  const done = (async () => { for await (const e of extract) { const c: Buffer[] = []; for await (const x of e) c.push(x as Buffer); if (e.header.name === 'manifest.json') manifest = JSON.parse(Buffer.concat(c).toString()); } })();
  extract.end(readFileSync(join(d.dataDir, 'transfer', 'race.tar')));
  await done;
  assert.equal(manifest.vm.name, winner);
  assert.deepEqual(readdirSync(join(d.dataDir, 'transfer')).filter((n) => n.includes('.partial-')), [], 'no partial file left');
});

test('manifests are checked whole before anything is written: wrong snapshot field types, two snapshots on one tag', async () => {
  const before = (await d.call('GET', '/vms')).body.length;
  const snap = goodManifest.snapshots[0];
  assert.ok(snap, 'the round trip exported a snapshot');
  const bundleWith = (patch: (m: any) => void) => {
    const m = structuredClone(goodManifest);
    patch(m);
    return makeTar([{ name: 'manifest.json', data: Buffer.from(JSON.stringify(m)) }, { name: 'disk.qcow2', data: goodDisk }]);
  };
  const cases: [string, (m: any) => void, string][] = [
    ['description is a number', (m) => { m.snapshots[0].description = 42; }, 'manifest.json/snapshots/0/description'],
    ['createdAt is a number', (m) => { m.snapshots[0].createdAt = 1733353800; }, 'manifest.json/snapshots/0/createdAt'],
    ['two snapshots on one tag', (m) => { m.snapshots.push({ ...snap, name: 'again' }); }, 'manifest.json/snapshots/1/tag'],
    ['an unknown field', (m) => { m.vm.extra = 1; }, 'manifest.json/vm/extra'],
  ];
  for (const [what, patch, field] of cases) {
    const r = await upload(await bundleWith(patch), 'application/x-tar', '?name=checked');
    assertProblem(r, 400, 'VALIDATION_FAILED', what);
    assert.equal(r.body.field, field, what);
  }
  assert.equal((await d.call('GET', '/vms')).body.length, before, 'no VM was created');
  assert.deepEqual(readdirSync(join(d.dataDir, 'vms')).filter((n) => n.startsWith('.import')), [], 'no staging folder left');
});

test('host paths: an existing file outside transfer/ and a missing one get the same answer (no existence oracle)', async () => {
  const shape = (r: { status: number; body: any }, path: string) => ({ status: r.status, code: r.body.code, field: r.body.field, detail: String(r.body.detail).replace(path, '<path>') });
  const importExisting = shape(await d.call('POST', '/vms/import', { path: '/etc/passwd' }), '/etc/passwd');
  assert.equal(importExisting.status, 403);
  for (const p of ['/etc/grove-no-such-file', '/no/such/dir/x.tar', '../no-such.tar']) {
    assert.deepEqual(shape(await d.call('POST', '/vms/import', { path: p }), p), importExisting, p);
  }
  const exportExisting = shape(await d.call('POST', '/vms/orig/export', { path: '/etc/x.tar' }), '/etc/x.tar');
  assert.equal(exportExisting.status, 403);
  for (const p of ['/no/such/dir/x.tar', '../no-such-dir/x.tar']) {
    assert.deepEqual(shape(await d.call('POST', '/vms/orig/export', { path: p }), p), exportExisting, p);
  }
  const createExisting = shape(await d.call('POST', '/vms', { name: 'oracle', kernel: '/etc/passwd' }), '/etc/passwd');
  assert.equal(createExisting.status, 403);
  assert.deepEqual(shape(await d.call('POST', '/vms', { name: 'oracle', kernel: '/etc/grove-no-such-file' }), '/etc/grove-no-such-file'), createExisting);
});
