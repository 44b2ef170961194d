/**
 * End to end: distro image downloads through the real daemon (its own process, SQLite, files) from a real
 * HTTP server on 127.0.0.1 standing in for the mirrors, with faults switched on per test: drops, a server
 * ignoring Range, stalls, 404s, wrong checksums, and a daemon SIGKILLed mid-download.
 * Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/downloads.test.js
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { assertOk, assertProblem } from '../helpers/api.js';
import { readEvents, latestEventId, type EventEnvelope } from '../helpers/events.js';
import { makeImage, startImageServer, type ImageServer } from '../helpers/image-server.js';
import { runCommand } from '../helpers/run.js';

const GROVE = join(REPO_ROOT, 'bin', 'grove');
const MiB = 1024 * 1024;

let scratch: string;
let srv: ImageServer;
let image: ReturnType<typeof makeImage>;
let catalogPath: string;
let d: TestDaemon;

/** Catalog ids → the path the server serves each image at (all the same bytes, under their own names). */
const PATHS: Record<string, string> = {
  'test-512': '/debian/test-512.qcow2',
  'test-256': '/ubuntu/test-256.img',
  'test-bsd': '/fedora/test-bsd.qcow2',
  'test-bad': '/debian/test-bad.qcow2',
  'test-404': '/debian/test-404.qcow2',
};
const fileOf = (id: string): string => PATHS[id]!.split('/').pop()!;

function catalog(url: string): object {
  const entry = (id: string, checksumUrl: string) => ({ id, name: `Test ${id}`, version: '1', arch: 'x86_64', format: 'qcow2', url: `${url}${PATHS[id]}`, checksumUrl });
  return {
    distros: [
      entry('test-512', `${url}/debian/SHA512SUMS`), entry('test-256', `${url}/ubuntu/SHA256SUMS`), entry('test-bsd', `${url}/fedora/CHECKSUM`),
      entry('test-bad', `${url}/debian/SHA512SUMS`), entry('test-404', `${url}/debian/SHA512SUMS`),
    ],
  };
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-dl-e2e-'));
  image = makeImage(join(scratch, 'image.bin'), 6 * MiB + 4321);
  srv = await startImageServer();
  for (const [id, path] of Object.entries(PATHS)) if (id !== 'test-404') srv.file(path, image.path);
  srv.text('/debian/SHA512SUMS', `${'1'.repeat(128)}  other.qcow2\n${image.sha512}  test-512.qcow2\n${'ee'.repeat(64)}  test-bad.qcow2\n${image.sha512}  test-404.qcow2\n`);
  srv.text('/ubuntu/SHA256SUMS', `${'2'.repeat(64)} *other.img\n${image.sha256} *test-256.img\n`);
  srv.text('/fedora/CHECKSUM', `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# test-bsd.qcow2: ${image.bytes} bytes\nSHA256 (test-bsd.qcow2) = ${image.sha256}\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n`);
  srv.text('/catalog.json', JSON.stringify(catalog(srv.url)));
  catalogPath = join(scratch, 'catalog.json');
  writeFileSync(catalogPath, JSON.stringify(catalog(srv.url)));
  d = await startDaemon({ env: { GROVE_CATALOG: catalogPath } });
});

after(async () => {
  await d?.cleanup();
  await srv?.close();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  for (const k of Object.keys(srv.faults)) delete (srv.faults as Record<string, unknown>)[k];
  srv.release();
});

const imagePath = (id: string): string => join(d.dataDir, 'images', fileOf(id));
const partPath = (id: string): string => `${imagePath(id)}.part`;
const sha512Of = (path: string): string => createHash('sha512').update(readFileSync(path)).digest('hex');

async function startDownload(id: string, status = 202): Promise<any> {
  return assertOk(await d.call('POST', '/downloads', { distro: id }), status, `POST /downloads ${id}`);
}

async function ended(id: string, timeoutMs = 60_000): Promise<any> {
  let last: any;
  try {
    return await waitFor(`download ${id} to end`, async () => {
      last = assertOk(await d.call('GET', `/downloads/${id}`), 200, 'GET /downloads/:id');
      return last.state === 'queued' || last.state === 'running' ? null : last;
    }, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen ${JSON.stringify(last)}\n${d.output().slice(-3000)}`);
  }
}

/** A pull that must succeed: the file in images/ is the image, no partial file is left. */
async function pullOk(id: string): Promise<any> {
  const dl = await ended((await startDownload(id)).id);
  assert.equal(dl.state, 'completed', `download of ${id}: ${JSON.stringify(dl)}\n${d.output().slice(-2000)}`);
  assert.equal(sha512Of(imagePath(id)), image.sha512, 'the file in images/ is the image');
  assert.equal(existsSync(partPath(id)), false, 'no partial file left');
  return dl;
}

async function removeImage(id: string): Promise<void> {
  assertOk(await d.call('DELETE', `/images/${id}`), 204, `DELETE /images/${id}`);
}

const eventsOf = (events: EventEnvelope[], downloadId: string) => events.filter((e) => e.data['downloadId'] === downloadId);

test('GET /distros lists the catalog GROVE_CATALOG names, with checksum sources, nothing local yet', async () => {
  const list = assertOk(await d.call('GET', '/distros'), 200, 'GET /distros');
  assert.deepEqual(list.map((x: any) => x.id), Object.keys(PATHS));
  const first = list[0];
  assert.deepEqual(first, {
    id: 'test-512', name: 'Test test-512', version: '1', arch: 'x86_64', format: 'qcow2', url: `${srv.url}/debian/test-512.qcow2`,
    checksumUrl: `${srv.url}/debian/SHA512SUMS`, downloaded: false, image: null, download: null,
  });
  assert.deepEqual(assertOk(await d.call('GET', '/downloads'), 200, 'GET /downloads'), []);
});

test('happy path: streamed, verified against SHA512SUMS, renamed into images/, events seen, GET /distros says downloaded', async () => {
  const since = await latestEventId(d);
  const dl = await pullOk('test-512');
  assert.equal(dl.bytes, image.bytes);
  assert.equal(dl.totalBytes, image.bytes);
  assert.equal(dl.algorithm, 'sha512');
  assert.equal(dl.expectedDigest, image.sha512);
  assert.deepEqual([dl.retries, dl.restarts, dl.error], [0, 0, null]);
  const mine = eventsOf(await readEvents(d, since), dl.id);
  assert.equal(mine[0]!.type, 'download.started');
  assert.deepEqual(mine[0]!.data, { downloadId: dl.id, distro: 'test-512', url: dl.url, file: 'test-512.qcow2', resumeFrom: 0 });
  const progress = mine.filter((e) => e.type === 'download.progress');
  assert.ok(progress.length >= 1, 'progress events');
  for (const p of progress) assert.deepEqual(Object.keys(p.data).sort(), ['bytes', 'bytesPerSecond', 'distro', 'downloadId', 'totalBytes']);
  assert.equal(progress.at(-1)!.data['bytes'], image.bytes);
  assert.equal(mine.at(-1)!.type, 'download.completed');
  assert.deepEqual(mine.at(-1)!.data, {
    downloadId: dl.id, distro: 'test-512', file: 'test-512.qcow2', path: imagePath('test-512'), bytes: image.bytes, algorithm: 'sha512', digest: image.sha512,
  });
  const listed = assertOk(await d.call('GET', '/distros'), 200, 'GET /distros').find((x: any) => x.id === 'test-512');
  assert.equal(listed.downloaded, true);
  assert.deepEqual({ ...listed.image, downloadedAt: undefined }, {
    file: 'test-512.qcow2', path: imagePath('test-512'), bytes: image.bytes, algorithm: 'sha512', digest: image.sha512, downloadedAt: undefined,
  });
  // Asked again: the completed download, 200, no transfer.
  const requests = srv.requestsFor(PATHS['test-512']!).length;
  const again = await startDownload('test-512', 200);
  assert.deepEqual([again.id, again.state], [dl.id, 'completed']);
  assert.equal(srv.requestsFor(PATHS['test-512']!).length, requests);
  await removeImage('test-512');
  assert.equal(existsSync(imagePath('test-512')), false);
});

test('SHA256SUMS ("hex *name") and a BSD CHECKSUM inside a PGP clear-signature verify too', async () => {
  assert.equal((await pullOk('test-256')).algorithm, 'sha256');
  assert.equal((await pullOk('test-bsd')).algorithm, 'sha256');
  await removeImage('test-256');
  await removeImage('test-bsd');
});

test('a connection dropped mid-way is resumed with Range and the file is correct', async () => {
  srv.faults.dropAfter = 2 * MiB;
  const before = srv.requestsFor(PATHS['test-512']!).length;
  const dl = await pullOk('test-512');
  assert.equal(dl.retries, 1);
  assert.equal(dl.restarts, 0);
  const reqs = srv.requestsFor(PATHS['test-512']!).slice(before);
  assert.equal(reqs.length, 2, JSON.stringify(reqs));
  assert.deepEqual([reqs[0]!.range, reqs[0]!.status], [null, 200]);
  const m = /^bytes=(\d+)-$/.exec(reqs[1]!.range ?? '');
  assert.ok(m, `the second request asks for a range: ${JSON.stringify(reqs[1])}`);
  assert.ok(Number(m[1]) > 0 && Number(m[1]) <= 2 * MiB, `resumed from what arrived: ${m[1]}`);
  assert.equal(reqs[1]!.status, 206);
  assert.ok(reqs[1]!.ifRange, 'If-Range guards against a changed file');
  await removeImage('test-512');
});

test('a server that ignores Range (200 to the resume) gets a fresh start from byte 0, and the file is correct', async () => {
  srv.faults.dropAfter = 2 * MiB;
  srv.faults.ignoreRange = true;
  const before = srv.requestsFor(PATHS['test-512']!).length;
  const dl = await pullOk('test-512');
  assert.equal(dl.restarts, 1);
  assert.equal(dl.bytes, image.bytes);
  const reqs = srv.requestsFor(PATHS['test-512']!).slice(before);
  assert.equal(reqs.length, 2);
  assert.match(reqs[1]!.range ?? '', /^bytes=\d+-$/);
  assert.equal(reqs[1]!.status, 200, 'the server sent the whole file again');
  assert.equal(statSync(imagePath('test-512')).size, image.bytes, 'nothing appended to the first part');
  await removeImage('test-512');
});

test('a checksum mismatch fails with CHECKSUM_MISMATCH: download.failed, no image, no partial file', async () => {
  const since = await latestEventId(d);
  const dl = await ended((await startDownload('test-bad')).id);
  assert.equal(dl.state, 'failed');
  assert.equal(dl.error.code, 'CHECKSUM_MISMATCH');
  assert.match(dl.error.reason, new RegExp(`SHA512 of the downloaded file is ${image.sha512}, but the checksum source says ${'ee'.repeat(64)}`));
  assert.equal(existsSync(imagePath('test-bad')), false);
  assert.equal(existsSync(partPath('test-bad')), false);
  const failed = eventsOf(await readEvents(d, since), dl.id).at(-1)!;
  assert.equal(failed.type, 'download.failed');
  assert.deepEqual([failed.data['code'], failed.data['state']], ['CHECKSUM_MISMATCH', 'failed']);
  const listed = assertOk(await d.call('GET', '/distros'), 200, 'GET /distros').find((x: any) => x.id === 'test-bad');
  assert.equal(listed.downloaded, false);
});

test('a 404 image fails with DOWNLOAD_FAILED naming the status, without retries', async () => {
  const dl = await ended((await startDownload('test-404')).id);
  assert.equal(dl.state, 'failed');
  assert.equal(dl.error.code, 'DOWNLOAD_FAILED');
  assert.match(dl.error.reason, /test-404\.qcow2 answered HTTP 404 Not Found/);
  assert.equal(dl.retries, 0);
  assert.equal(srv.requestsFor(PATHS['test-404']!).length, 1);
});

test('cancel (DELETE) stops a running download and removes its partial file', async () => {
  srv.faults.stallAfter = 2 * MiB;
  const dl = await startDownload('test-512');
  await waitFor('part of the image to arrive', async () => existsSync(partPath('test-512')) && statSync(partPath('test-512')).size >= MiB);
  const cancelled = assertOk(await d.call('DELETE', `/downloads/${dl.id}`), 200, 'DELETE /downloads/:id');
  assert.equal(cancelled.state, 'cancelled');
  assert.deepEqual(cancelled.error, { code: 'DOWNLOAD_CANCELLED', reason: 'cancelled by a caller' });
  assert.equal(existsSync(partPath('test-512')), false, 'partial file removed');
  assert.equal(existsSync(imagePath('test-512')), false);
  assertProblem(await d.call('DELETE', `/downloads/${dl.id}`), 409, 'INVALID_STATE', 'cancel twice');
});

test('a second request joins the running download: same id, one transfer', async () => {
  srv.faults.stallAfter = 2 * MiB;
  const before = srv.requestsFor(PATHS['test-bsd']!).length;
  const a = await startDownload('test-bsd');
  const b = await startDownload('test-bsd');
  assert.equal(b.id, a.id);
  await waitFor('the transfer to begin', async () => srv.requestsFor(PATHS['test-bsd']!).length > before);
  const c = await startDownload('test-bsd');
  assert.equal(c.id, a.id);
  assert.equal(srv.requestsFor(PATHS['test-bsd']!).length - before, 1, 'one transfer');
  // Unstalled: the held connection is cut, and the one download resumes it.
  delete srv.faults.stallAfter;
  srv.release();
  const dl = await ended(a.id);
  assert.equal(dl.state, 'completed', JSON.stringify(dl));
  const reqs = srv.requestsFor(PATHS['test-bsd']!).slice(before);
  assert.deepEqual(reqs.map((r) => r.range === null), [true, ...reqs.slice(1).map(() => false)], 'only the first request starts at byte 0');
  const list = assertOk(await d.call('GET', '/downloads'), 200, 'GET /downloads');
  assert.equal(list.filter((x: any) => x.id === a.id).length, 1);
  await removeImage('test-bsd');
});

test('the daemon SIGKILLed mid-download resumes it at its next start: Range from the partial file\'s size, completed', async () => {
  srv.faults.stallAfter = 3 * MiB;
  const dl = await startDownload('test-512');
  await waitFor('part of the image on disk', async () => existsSync(partPath('test-512')) && statSync(partPath('test-512')).size >= 2 * MiB);
  await d.stop('SIGKILL');
  const have = statSync(partPath('test-512')).size;
  delete srv.faults.stallAfter;
  srv.release();
  const before = srv.requestsFor(PATHS['test-512']!).length;
  d = await startDaemon({ dataDir: d.dataDir, port: d.port, env: { GROVE_CATALOG: catalogPath } });
  const done = await ended(dl.id);
  assert.equal(done.state, 'completed', JSON.stringify(done));
  assert.equal(sha512Of(imagePath('test-512')), image.sha512);
  const reqs = srv.requestsFor(PATHS['test-512']!).slice(before);
  assert.deepEqual(reqs.map((r) => [r.range, r.status]), [[`bytes=${have}-`, 206]], 'resumed from the partial file, not from 0');
  assert.equal(existsSync(partPath('test-512')), false);
  await removeImage('test-512');
});

test('MCP: list_distros and download_distro (wait) over plain JSON-RPC', async () => {
  const rpc = async (name: string, args: object): Promise<any> => {
    const r = await fetch(`${d.url}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
    });
    assert.equal(r.status, 200);
    return ((await r.json()) as any).result;
  };
  const listed = await rpc('list_distros', {});
  assert.deepEqual(listed.structuredContent.distros.map((x: any) => x.id), Object.keys(PATHS));
  const done = await rpc('download_distro', { distro: 'test-256', wait: true, timeoutSeconds: 60 });
  assert.equal(done.isError, undefined);
  assert.deepEqual([done.structuredContent.state, done.structuredContent.algorithm], ['completed', 'sha256']);
  const downloads = await rpc('list_downloads', {});
  assert.ok(downloads.structuredContent.downloads.some((x: any) => x.id === done.structuredContent.id));
  // A waited-for download that fails is a tool error carrying the failure's code, like every other tool's.
  const bad = await rpc('download_distro', { distro: 'test-bad', wait: true, timeoutSeconds: 60 });
  assert.equal(bad.isError, true, JSON.stringify(bad));
  const problem = JSON.parse(bad.content[0].text);
  assert.equal(problem.code, 'CHECKSUM_MISMATCH');
  assert.match(problem.detail, /^download of 'test-bad' failed: the SHA512 of the downloaded file is [0-9a-f]{128}, but the checksum source says (ee){64}/);
  assert.equal(problem.distro, 'test-bad');
  assert.equal(assertOk(await d.call('GET', `/downloads/${problem.download}`), 200, 'the failed download').state, 'failed');
  const unknown = await rpc('download_distro', { distro: 'nope' });
  assert.equal(unknown.isError, true);
  assert.equal(JSON.parse(unknown.content[0].text).code, 'DISTRO_NOT_FOUND');
  await removeImage('test-256');
});

test('CLI: grove pull --json prints one event per line and exits 0; a failed pull exits 1 with the code; images, images rm', async () => {
  const env = { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token };
  const grove = (args: string[]) => runCommand(process.execPath, [GROVE, ...args], { env, timeoutMs: 120_000 });
  const r = await grove(['pull', 'test-bsd', '--json']);
  assert.equal(r.code, 0, `pull: ${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual([lines[0].type, lines.at(-1).type], ['download.started', 'download.completed']);
  assert.ok(lines.some((e) => e.type === 'download.progress'));
  assert.ok(lines.every((e) => e.data.distro === 'test-bsd' && e.data.downloadId === lines[0].data.downloadId));
  assert.equal(sha512Of(imagePath('test-bsd')), image.sha512);

  const local = await grove(['pull', 'test-bsd']);
  assert.equal(local.code, 0);
  assert.match(local.stdout, /test-bsd is already local/);
  const table = await grove(['images']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^DISTRO\s+NAME\s+VERSION\s+FORMAT\s+LOCAL\s+SIZE/);
  assert.match(table.stdout, /\ntest-bsd\s+Test test-bsd\s+1\s+qcow2\s+yes\s+6\.0 MiB\n/);
  assert.match(table.stdout, /\ntest-404\s+Test test-404\s+1\s+qcow2\s+-\s+-\n/);

  const bad = await grove(['pull', 'test-bad']);
  assert.equal(bad.code, 1, bad.stdout);
  assert.match(bad.stderr, /^grove: pull test-bad: .*checksum source says .* \(CHECKSUM_MISMATCH\)\n$/);
  const unknown = await grove(['pull', 'nope']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /\(DISTRO_NOT_FOUND\)/);

  const rm = await grove(['images', 'rm', 'test-bsd']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(existsSync(imagePath('test-bsd')), false);
  const rmAgain = await grove(['images', 'rm', 'test-bsd']);
  assert.equal(rmAgain.code, 1);
  assert.match(rmAgain.stderr, /distro 'test-bsd' has no local image \(NOT_FOUND\)/);
});

test('bad input: unknown distro 404, unknown or missing field 400, unknown download 404, no image 404', async () => {
  assertProblem(await d.call('POST', '/downloads', { distro: 'nope' }), 404, 'DISTRO_NOT_FOUND', 'unknown distro');
  assertProblem(await d.call('POST', '/downloads', { distro: 'test-512', priority: 1 }), 400, 'VALIDATION_FAILED', 'unknown field');
  assertProblem(await d.call('POST', '/downloads', {}), 400, 'VALIDATION_FAILED', 'missing distro');
  assertProblem(await d.call('POST', '/downloads', { distro: '../etc' }), 400, 'VALIDATION_FAILED', 'not an id');
  assertProblem(await d.call('GET', '/downloads/00000000-0000-4000-8000-000000000000'), 404, 'NOT_FOUND', 'unknown download');
  assertProblem(await d.call('DELETE', '/downloads/nope'), 404, 'NOT_FOUND', 'cancel unknown');
  assertProblem(await d.call('DELETE', '/images/test-404'), 404, 'NOT_FOUND', 'no local image');
  assertProblem(await d.call('GET', '/downloads?limit=0'), 400, 'VALIDATION_FAILED', 'limit');
  // A partial download is never an image a VM can be made from.
  writeFileSync(partPath('test-512'), 'partial');
  const vm = await d.call('POST', '/vms', { name: 'from-part', image: 'test-512.qcow2.part', diskGB: 1 });
  assertProblem(vm, 400, 'VALIDATION_FAILED', 'create from a .part');
  assert.match(vm.body.detail, /unfinished download/);
  rmSync(partPath('test-512'));
});

test('a catalog served over HTTP works; an invalid or missing catalog stops the daemon at start with a clear message', async () => {
  const fromUrl = await startDaemon({ env: { GROVE_CATALOG: `${srv.url}/catalog.json` } });
  try {
    const list = assertOk(await fromUrl.call('GET', '/distros'), 200, 'GET /distros');
    assert.deepEqual(list.map((x: any) => x.id), Object.keys(PATHS));
  } finally {
    await fromUrl.cleanup();
  }
  const serve = async (catalogArg: string): Promise<{ code: number | null; stderr: string }> => {
    const dir = mkdtempSync(join(scratch, 'bad-'));
    const r = await runCommand(process.execPath, [GROVE, 'serve', '--port', String(await freePort()), '--data-dir', dir], {
      env: { ...process.env, GROVE_CATALOG: catalogArg, GROVE_ACCEL: 'tcg' }, timeoutMs: 30_000,
    });
    return { code: r.code, stderr: r.stderr };
  };
  const badFile = join(scratch, 'bad-catalog.json');
  const doc = catalog(srv.url) as { distros: Record<string, unknown>[] };
  doc.distros[1]!['format'] = 'vmdk';
  writeFileSync(badFile, JSON.stringify(doc));
  const bad = await serve(badFile);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, `grove serve: cannot start: catalog ${badFile}: distros[1] ("test-256").format: must be qcow2 or raw (got "vmdk")\n`);

  writeFileSync(badFile, '{ "distros": [ ');
  const notJson = await serve(badFile);
  assert.equal(notJson.code, 1);
  assert.match(notJson.stderr, new RegExp(`^grove serve: cannot start: catalog ${badFile} is not valid JSON: `));

  const missing = await serve(join(scratch, 'nope.json'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^grove serve: cannot start: cannot read the catalog .*nope\.json: ENOENT/);

  const notFound = await serve(`${srv.url}/no-catalog.json`);
  assert.equal(notFound.code, 1);
  assert.match(notFound.stderr, /^grove serve: cannot start: cannot fetch the catalog http:\/\/127\.0\.0\.1:\d+\/no-catalog\.json: HTTP 404 Not Found\n$/);
});
