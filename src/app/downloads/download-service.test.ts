import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Catalog, Distro } from '../../domain/distro.js';
import { DomainError } from '../../domain/errors.js';
import type { GroveEvent, NewEvent } from '../../domain/events.js';
import { HttpRefused, type GetOptions, type HttpFetcher, type HttpResponse, type ImageFiles } from '../../ports/downloads.js';
import { FsImageFiles } from '../../storage/image-files.js';
import { openDb, type Db } from '../../store/db.js';
import { SqliteDownloadRepo, SqliteImageRepo } from '../../store/download-repo.js';
import { DataLayout } from '../layout.js';
import { DownloadService, type DownloadOptions } from './download-service.js';

/** What the fake server does with one request for an image (`n`: this image's request number, from 1). */
interface Behaviour {
  status?: number;
  /** The body ends with a socket error after this many bytes. */
  dropAfter?: number;
  /** Answer 200 with everything, whatever Range says. */
  ignoreRange?: boolean;
  /** The body waits for the signal (a transfer that hangs until cancelled or shut down) after this many bytes. */
  hangAfter?: number;
  /** The connection cannot be made. */
  refuse?: boolean;
  /** The request is refused before any answer, for good (a redirect loop, a redirect to file:). */
  refused?: string;
  /** Answer 206 with the file from this byte, whatever was asked (a broken server or proxy). */
  rangeFrom?: number;
}

interface Call { url: string; from: number; ifRange: string | null }

/** An HTTP server in memory: files, texts and a per-request behaviour script. Every request is recorded. */
class FakeFetcher implements HttpFetcher {
  readonly calls: Call[] = [];
  readonly files = new Map<string, Buffer>();
  readonly texts = new Map<string, string>();
  plan: (url: string, n: number) => Behaviour = () => ({});

  async get(url: string, opts: GetOptions): Promise<HttpResponse> {
    opts.signal.throwIfAborted();
    const from = opts.from ?? 0;
    this.calls.push({ url, from, ifRange: opts.ifRange ?? null });
    const b = this.plan(url, this.calls.filter((c) => c.url === url).length);
    if (b.refuse) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    if (b.refused !== undefined) throw new HttpRefused(b.refused);
    // A real answer takes a turn of the event loop: a client that loops on answers must not starve timers.
    await new Promise((r) => setImmediate(r));
    const text = this.texts.get(url);
    const file = this.files.get(url);
    const head = { statusText: '', contentRange: null, unsatisfiedTotal: null, validator: '"v1"' } as const;
    const empty = { head: { ...head, status: 404, statusText: 'Not Found', contentLength: 0 }, body: chunks(Buffer.alloc(0)), discard: () => undefined };
    if (b.status !== undefined) return { ...empty, head: { ...empty.head, status: b.status, statusText: '' } };
    if (text !== undefined) return { head: { ...head, status: 200, contentLength: text.length }, body: chunks(Buffer.from(text)), discard: () => undefined };
    if (!file) return empty;
    if (b.rangeFrom !== undefined) {
      const rest = file.subarray(b.rangeFrom);
      return { head: { ...head, status: 206, contentLength: rest.length, contentRange: { start: b.rangeFrom, end: file.length - 1, total: file.length } }, body: chunks(rest), discard: () => undefined };
    }
    if (from > 0 && !b.ignoreRange) {
      if (from >= file.length) return { ...empty, head: { ...head, status: 416, contentLength: 0, unsatisfiedTotal: file.length } };
      const rest = file.subarray(from);
      return {
        head: { ...head, status: 206, contentLength: rest.length, contentRange: { start: from, end: file.length - 1, total: file.length } },
        body: chunks(rest, b, opts.signal), discard: () => undefined,
      };
    }
    return { head: { ...head, status: 200, contentLength: file.length }, body: chunks(file, b, opts.signal), discard: () => undefined };
  }
}

async function* chunks(data: Buffer, b: Behaviour = {}, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const size = 64 * 1024;
  for (let at = 0; at < data.length; at += size) {
    const piece = data.subarray(at, Math.min(at + size, data.length));
    if (b.dropAfter !== undefined && at + piece.length > b.dropAfter) {
      if (b.dropAfter > at) yield piece.subarray(0, b.dropAfter - at);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    if (b.hangAfter !== undefined && at >= b.hangAfter) {
      signal!.throwIfAborted();
      await new Promise((_, reject) => signal!.addEventListener('abort', () => reject(signal!.reason), { once: true }));
    }
    yield piece;
    await Promise.resolve();
  }
}

const IMG = 'http://mirror.test/img/test-os.qcow2';
const SUMS = 'http://mirror.test/img/SHA512SUMS';

interface World {
  svc: DownloadService;
  fetcher: FakeFetcher;
  events: GroveEvent[];
  layout: DataLayout;
  db: Db;
  data: Buffer;
  sha512: string;
  downloads: SqliteDownloadRepo;
  images: SqliteImageRepo;
  /** A new service over the same database and folder (a daemon restart). */
  restart(opts?: Partial<DownloadOptions>): DownloadService;
}

const worlds: World[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const w of worlds.splice(0)) { await w.svc.close(); w.db.close(); }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function distro(id: string, url: string, extra: Partial<Distro> = {}): Distro {
  return { id, name: id, version: '1', arch: 'x86_64', format: 'qcow2', url, checksumUrl: SUMS, ...extra };
}

function world(opts: { catalog?: Catalog | ((sha512: string) => Catalog); options?: Partial<DownloadOptions>; files?: (real: ImageFiles) => ImageFiles; size?: number } = {}): World {
  const dir = mkdtempSync(join(tmpdir(), 'grove-dl-unit-'));
  dirs.push(dir);
  const layout = new DataLayout(dir);
  mkdirSync(layout.images, { recursive: true });
  const db = openDb(join(dir, 'grove.db'));
  const fetcher = new FakeFetcher();
  const data = randomBytes(opts.size ?? 1024 * 1024 + 12345);
  const sha512 = createHash('sha512').update(data).digest('hex');
  fetcher.files.set(IMG, data);
  fetcher.texts.set(SUMS, `${'0'.repeat(128)}  other.qcow2\n${sha512}  test-os.qcow2\n`);
  const events: GroveEvent[] = [];
  const downloads = new SqliteDownloadRepo(db);
  const images = new SqliteImageRepo(db);
  const catalog = typeof opts.catalog === 'function' ? opts.catalog(sha512) : opts.catalog ?? { distros: [distro('test-os', IMG)] };
  const make = (o: Partial<DownloadOptions> = {}): DownloadService => new DownloadService({
    catalog, fetcher, files: opts.files ? opts.files(new FsImageFiles()) : new FsImageFiles(), downloads, images,
    events: { publish: (e: NewEvent) => { const ev = { ...e, id: events.length + 1, timestamp: new Date().toISOString() }; events.push(ev); return ev; } },
    paths: layout, log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    options: { progressIntervalMs: 0, retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 1 }, ...opts.options, ...o },
    sleep: async () => undefined,
  });
  const w: World = {
    svc: make(), fetcher, events, layout, db, data, sha512, downloads, images,
    restart: (o) => { w.svc = make(o); return w.svc; },
  };
  worlds.push(w);
  return w;
}

async function finished(w: World, id: string): Promise<ReturnType<DownloadService['get']>> {
  return w.svc.wait(id, 10_000);
}

const imageCalls = (w: World) => w.fetcher.calls.filter((c) => c.url === IMG);
const typesOf = (w: World) => w.events.map((e) => e.type);

test('happy path: verified against the SHA512SUMS entry, renamed into images/, recorded, events in order', async () => {
  const w = world();
  const { download, outcome } = await w.svc.start('test-os');
  assert.equal(outcome, 'started');
  const done = await finished(w, download.id);
  assert.equal(done.state, 'completed', JSON.stringify(done.error));
  assert.equal(done.bytes, w.data.length);
  assert.equal(done.algorithm, 'sha512');
  assert.equal(done.expectedDigest, w.sha512);
  const path = w.layout.image('test-os.qcow2');
  assert.deepEqual(readFileSync(path), w.data);
  assert.equal(existsSync(w.layout.imagePart('test-os.qcow2')), false, 'no partial file left');
  assert.deepEqual(w.svc.localImage('test-os'), {
    distro: 'test-os', file: 'test-os.qcow2', path, format: 'qcow2', bytes: w.data.length, algorithm: 'sha512', digest: w.sha512, url: IMG,
    downloadedAt: done.finishedAt, downloadId: done.id,
  });
  const types = typesOf(w);
  assert.equal(types[0], 'download.started');
  assert.equal(types.at(-1), 'download.completed');
  const progress = w.events.filter((e) => e.type === 'download.progress');
  assert.ok(progress.length >= 1);
  assert.deepEqual([progress.at(-1)!.data['bytes'], progress.at(-1)!.data['totalBytes']], [w.data.length, w.data.length], 'the last progress event is 100 %');
  const last = w.events.at(-1)!;
  assert.deepEqual(last.data, { downloadId: done.id, distro: 'test-os', file: 'test-os.qcow2', path, bytes: w.data.length, algorithm: 'sha512', digest: w.sha512 });
  assert.equal((await w.svc.distros())[0]!.downloaded, true);

  // Asked again: the local image, no transfer.
  const again = await w.svc.start('test-os');
  assert.equal(again.outcome, 'local');
  assert.equal(again.download.id, done.id);
  assert.equal(imageCalls(w).length, 1);
});

test('a dropped connection is resumed with Range from what the partial file holds', async () => {
  const w = world();
  w.fetcher.plan = (url, n) => (url === IMG && n === 1 ? { dropAfter: 300_000 } : {});
  const { download } = await w.svc.start('test-os');
  const done = await finished(w, download.id);
  assert.equal(done.state, 'completed', JSON.stringify(done.error));
  assert.equal(done.retries, 1);
  assert.equal(done.restarts, 0);
  assert.deepEqual(imageCalls(w).map((c) => [c.from, c.ifRange]), [[0, null], [300_000, '"v1"']]);
  assert.deepEqual(readFileSync(w.layout.image('test-os.qcow2')), w.data);
});

test('a server that ignores Range (200 to a resume) makes the transfer start over from byte 0, never append', async () => {
  const w = world();
  w.fetcher.plan = (url, n) => (url !== IMG ? {} : n === 1 ? { dropAfter: 500_000 } : { ignoreRange: true });
  const { download } = await w.svc.start('test-os');
  const done = await finished(w, download.id);
  assert.equal(done.state, 'completed', JSON.stringify(done.error));
  assert.equal(done.restarts, 1);
  assert.deepEqual(imageCalls(w).map((c) => c.from), [0, 500_000]);
  assert.deepEqual(readFileSync(w.layout.image('test-os.qcow2')), w.data, 'the file is the image, not the first half plus all of it');
});

test('a server answering every request with another range than asked fails after the bounded retries, not in an endless loop', async () => {
  const w = world();
  w.fetcher.plan = (url) => (url === IMG ? { rangeFrom: 10 } : {});
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.state, 'failed');
  assert.equal(done.error?.code, 'DOWNLOAD_FAILED');
  assert.match(done.error!.reason, /^gave up after 3 retries: the server answered with a different range \(10-\d+\) than asked \(0-\)/);
  assert.equal(imageCalls(w).length, 4, 'one attempt and three retries');
});

test('a 206 from byte 0 to a plain request is the whole file', async () => {
  const w = world();
  w.fetcher.plan = (url) => (url === IMG ? { rangeFrom: 0 } : {});
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.state, 'completed', JSON.stringify(done.error));
  assert.deepEqual(readFileSync(w.layout.image('test-os.qcow2')), w.data);
});

test('a checksum mismatch fails with CHECKSUM_MISMATCH and leaves neither image nor partial file', async () => {
  const w = world();
  w.fetcher.texts.set(SUMS, `${'ab'.repeat(64)}  test-os.qcow2\n`);
  const { download } = await w.svc.start('test-os');
  const done = await finished(w, download.id);
  assert.equal(done.state, 'failed');
  assert.equal(done.error?.code, 'CHECKSUM_MISMATCH');
  assert.match(done.error!.reason, new RegExp(`is ${w.sha512}, but the checksum source says ${'ab'.repeat(64)}`));
  assert.equal(existsSync(w.layout.image('test-os.qcow2')), false);
  assert.equal(existsSync(w.layout.imagePart('test-os.qcow2')), false);
  assert.equal(w.svc.localImage('test-os'), undefined);
  const failed = w.events.at(-1)!;
  assert.equal(failed.type, 'download.failed');
  assert.equal(failed.data['code'], 'CHECKSUM_MISMATCH');
});

test('a failed download keeps the size the server announced, also when no progress event had been due yet', async () => {
  const w = world({ options: { progressIntervalMs: 60_000 } });
  w.fetcher.texts.set(SUMS, `${'ab'.repeat(64)}  test-os.qcow2\n`);
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.error?.code, 'CHECKSUM_MISMATCH');
  assert.deepEqual([done.bytes, done.totalBytes], [w.data.length, w.data.length]);
  assert.deepEqual([w.downloads.get(done.id)!.bytes, w.downloads.get(done.id)!.totalBytes], [w.data.length, w.data.length]);
});

test('HTTP errors: a 404 image is DOWNLOAD_FAILED at once; a missing sums file or entry is CHECKSUM_UNAVAILABLE', async () => {
  const w = world({
    catalog: { distros: [distro('gone', 'http://mirror.test/img/gone.qcow2'), distro('nosums', IMG, { checksumUrl: 'http://mirror.test/none/SHA256SUMS' }), distro('noentry', 'http://mirror.test/img/unlisted.qcow2')] },
  });
  w.fetcher.files.set('http://mirror.test/img/unlisted.qcow2', w.data);
  w.fetcher.texts.set(SUMS, `${w.sha512}  test-os.qcow2\n${'0'.repeat(128)}  gone.qcow2\n`);
  const gone = await finished(w, (await w.svc.start('gone')).download.id);
  assert.deepEqual([gone.state, gone.error?.code], ['failed', 'DOWNLOAD_FAILED']);
  assert.match(gone.error!.reason, /gone\.qcow2 answered HTTP 404 Not Found/);
  assert.equal(w.fetcher.calls.filter((c) => c.url.endsWith('gone.qcow2')).length, 1, 'a 404 is not retried');

  const nosums = await finished(w, (await w.svc.start('nosums')).download.id);
  assert.deepEqual([nosums.error?.code, /SHA256SUMS answered HTTP 404/.test(nosums.error!.reason)], ['CHECKSUM_UNAVAILABLE', true]);
  const noentry = await finished(w, (await w.svc.start('noentry')).download.id);
  assert.equal(noentry.error?.code, 'CHECKSUM_UNAVAILABLE');
  assert.match(noentry.error!.reason, /no entry for unlisted\.qcow2/);
  assert.equal(w.fetcher.calls.filter((c) => c.url.endsWith('unlisted.qcow2')).length, 0, 'nothing is downloaded that cannot be verified');
});

test('a request refused for good (a redirect loop) fails at once, for the image and for its sums file, without retries', async () => {
  const w = world({ catalog: { distros: [distro('test-os', IMG), distro('sums-loop', 'http://mirror.test/img/other.qcow2', { checksumUrl: 'http://mirror.test/loop/SHA512SUMS' })] } });
  w.fetcher.plan = (url) => (url === IMG || url.includes('/loop/') ? { refused: `more than 5 redirects from ${url}` } : {});
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.deepEqual([done.state, done.error?.code, done.retries], ['failed', 'DOWNLOAD_FAILED', 0]);
  assert.equal(done.error!.reason, `cannot fetch ${IMG}: more than 5 redirects from ${IMG}`);
  assert.equal(imageCalls(w).length, 1);
  const sums = await finished(w, (await w.svc.start('sums-loop')).download.id);
  assert.deepEqual([sums.state, sums.error?.code], ['failed', 'CHECKSUM_UNAVAILABLE']);
  assert.equal(sums.error!.reason, 'cannot fetch the checksum file http://mirror.test/loop/SHA512SUMS: more than 5 redirects from http://mirror.test/loop/SHA512SUMS');
  assert.equal(w.fetcher.calls.filter((c) => c.url.includes('/loop/')).length, 1);
});

test('too many drops end in DOWNLOAD_FAILED after the bounded retries; 5xx answers are retried, refused connections too', async () => {
  const w = world();
  w.fetcher.plan = (url) => (url === IMG ? { dropAfter: 0 } : {});
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.state, 'failed');
  assert.equal(done.error?.code, 'DOWNLOAD_FAILED');
  assert.match(done.error!.reason, /^gave up after 3 retries: the connection dropped after 0 of \d+ bytes/);
  assert.equal(imageCalls(w).length, 4, 'one attempt and three retries');

  const w2 = world();
  w2.fetcher.plan = (url, n) => (url !== IMG ? {} : n === 1 ? { status: 503 } : n === 2 ? { refuse: true } : {});
  const ok = await finished(w2, (await w2.svc.start('test-os')).download.id);
  assert.equal(ok.state, 'completed', JSON.stringify(ok.error));
  assert.equal(ok.retries, 2);
});

test('a second request joins the running download: same id, one transfer', async () => {
  const w = world();
  const [a, b] = await Promise.all([w.svc.start('test-os'), w.svc.start('test-os')]);
  assert.equal(a.download.id, b.download.id);
  assert.deepEqual([a.outcome, b.outcome].sort(), ['joined', 'started']);
  const c = await w.svc.start('test-os');
  assert.equal(c.download.id, a.download.id);
  assert.equal((await finished(w, a.download.id)).state, 'completed');
  assert.equal(imageCalls(w).length, 1);
  assert.equal(w.svc.list().length, 1);
});

test('bounded concurrency: two transfers at once, the third waits queued', async () => {
  const urls = ['a', 'b', 'c'].map((x) => `http://mirror.test/img/${x}.qcow2`);
  const w = world({ catalog: (sha512) => ({ distros: urls.map((u, i) => distro(`os-${i}`, u, { checksumUrl: undefined, sha512 })) }) });
  for (const u of urls) w.fetcher.files.set(u, w.data);
  w.fetcher.plan = (url) => (url.endsWith('/c.qcow2') ? {} : { hangAfter: 0 });
  const started = [];
  for (const id of ['os-0', 'os-1', 'os-2']) started.push((await w.svc.start(id)).download);
  const listed = await w.svc.distros();
  assert.deepEqual(['os-0', 'os-1', 'os-2'].map((id) => listed.find((d) => d.id === id)!.download?.state ?? null), ['running', 'running', 'queued']);
  await w.svc.cancel(started[0]!.id);
  assert.equal(w.svc.get(started[2]!.id).state, 'running', 'the queued one takes the free slot');
  await w.svc.cancel(started[1]!.id);
  assert.equal((await finished(w, started[2]!.id)).state, 'completed');
});

test('cancel: a running download ends cancelled, its partial file removed, download.failed with DOWNLOAD_CANCELLED', async () => {
  const w = world();
  w.fetcher.plan = (url) => (url === IMG ? { hangAfter: 200_000 } : {});
  const { download } = await w.svc.start('test-os');
  const part = w.layout.imagePart('test-os.qcow2');
  for (let i = 0; i < 100 && !existsSync(part); i++) await new Promise((r) => setTimeout(r, 5));
  const c = await w.svc.cancel(download.id);
  assert.equal(c.state, 'cancelled');
  assert.deepEqual(c.error, { code: 'DOWNLOAD_CANCELLED', reason: 'cancelled by a caller' });
  assert.equal(existsSync(part), false);
  const ev = w.events.at(-1)!;
  assert.deepEqual([ev.type, ev.data['code'], ev.data['state']], ['download.failed', 'DOWNLOAD_CANCELLED', 'cancelled']);
  await assert.rejects(w.svc.cancel(download.id), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE');
  await assert.rejects(w.svc.cancel('nope'), (e: unknown) => e instanceof DomainError && e.code === 'NOT_FOUND');
});

test('a cancel that arrives while the verified image is being renamed into place comes too late: 409, the image is kept', async () => {
  let entered!: () => void;
  const renaming = new Promise<void>((r) => { entered = r; });
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const w = world({ files: (real) => ({ ...bind(real), promote: async (from, to) => { entered(); await gate; return real.promote(from, to); } }) });
  const { download } = await w.svc.start('test-os');
  await renaming;
  const cancelling = w.svc.cancel(download.id);
  release();
  await assert.rejects(cancelling, (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE'
    && e.message === `download '${download.id}' completed before it could be cancelled; remove the image with DELETE /api/v1/images/test-os`);
  assert.equal(w.svc.get(download.id).state, 'completed');
  assert.deepEqual(readFileSync(w.svc.localImage('test-os')!.path), w.data);
  assert.deepEqual(w.events.filter((e) => e.type === 'download.failed'), []);
});

test('after a restart an unfinished download resumes: the partial file is rehashed, then Range from its size', async () => {
  const w = world();
  w.fetcher.plan = (url) => (url === IMG ? { hangAfter: 400_000 } : {});
  const { download } = await w.svc.start('test-os');
  const part = w.layout.imagePart('test-os.qcow2');
  for (let i = 0; i < 200 && !(existsSync(part) && readFileSync(part).length >= 400_000); i++) await new Promise((r) => setTimeout(r, 5));
  await w.svc.close();
  assert.equal(w.downloads.get(download.id)!.state, 'running', 'a shutdown does not end the download');
  const have = readFileSync(part).length;
  assert.ok(have > 0);
  // What a crash can leave: the partial file, intact, and the row still running.
  w.fetcher.plan = () => ({});
  const svc = w.restart();
  assert.deepEqual(await svc.recover(), { resumed: 1, imagesForgotten: 0 });
  const done = await svc.wait(download.id, 10_000);
  assert.equal(done.state, 'completed', JSON.stringify(done.error));
  assert.deepEqual(imageCalls(w).at(-1), { url: IMG, from: have, ifRange: '"v1"' });
  assert.deepEqual(readFileSync(w.layout.image('test-os.qcow2')), w.data);
  const started = w.events.filter((e) => e.type === 'download.started');
  assert.deepEqual(started.map((e) => e.data['resumeFrom']), [0, have]);
});

test('a download the previous run left unfinished, already superseded by a newer request for that image, is not blamed on the catalog', async () => {
  const w = world();
  w.fetcher.plan = (url) => (url === IMG ? { hangAfter: 0 } : {});
  const old = (await w.svc.start('test-os')).download;
  await w.svc.close();
  w.fetcher.plan = () => ({});
  const svc = w.restart();
  const fresh = await svc.start('test-os');
  assert.deepEqual(await svc.recover(), { resumed: 0, imagesForgotten: 0 });
  const superseded = svc.get(old.id);
  assert.deepEqual([superseded.state, superseded.error], ['cancelled', { code: 'DOWNLOAD_CANCELLED', reason: `superseded by download ${fresh.download.id} of the same image, asked for before this one was resumed` }]);
  assert.equal((await svc.wait(fresh.download.id, 10_000)).state, 'completed');
});

test('a partial file that turns out corrupt after resuming fails the checksum, and is removed so the next pull starts clean', async () => {
  const w = world();
  writeFileSync(w.layout.imagePart('test-os.qcow2'), Buffer.alloc(1000, 7));
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.error?.code, 'CHECKSUM_MISMATCH');
  assert.equal(imageCalls(w)[0]!.from, 1000);
  assert.equal(existsSync(w.layout.imagePart('test-os.qcow2')), false);
  const again = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(again.state, 'completed');
});

test('a partial file already holding every byte (416 to the resume) is verified and kept', async () => {
  const w = world();
  writeFileSync(w.layout.imagePart('test-os.qcow2'), w.data);
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.state, 'completed', JSON.stringify(done.error));
  assert.deepEqual(imageCalls(w).map((c) => c.from), [w.data.length]);
});

test('a full disk ends the download with INSUFFICIENT_STORAGE and frees the partial file', async () => {
  const w = world({
    files: (real) => ({
      ...bind(real),
      openPart: async (path, mode) => {
        const inner = await real.openPart(path, mode);
        return { write: async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); }, close: () => inner.close() };
      },
    }),
  });
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.error?.code, 'INSUFFICIENT_STORAGE');
  assert.match(done.error!.reason, /full \(ENOSPC\)/);
  assert.equal(existsSync(w.layout.imagePart('test-os.qcow2')), false);
});

test('a full disk under the database too: the download still ends failed (INSUFFICIENT_STORAGE) for its callers, and is resumed at the next start', async () => {
  let armed = true;
  let full = false;
  const sqliteFull = (): Error => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  const w = world({
    files: (real) => ({
      ...bind(real),
      openPart: async (path, mode) => {
        const inner = await real.openPart(path, mode);
        return {
          // The disk fills at the first write: from then on the database cannot write either.
          write: async (chunks) => {
            if (!armed) return inner.write(chunks);
            full = true;
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          },
          close: () => inner.close(),
        };
      },
    }),
  });
  const update = w.downloads.update.bind(w.downloads);
  w.downloads.update = (d) => { if (full) throw sqliteFull(); update(d); };
  const events = w.svc['d'].events;
  const publish = events.publish.bind(events);
  events.publish = (e) => { if (full) throw sqliteFull(); return publish(e); };
  const { download } = await w.svc.start('test-os');
  const done = await finished(w, download.id);
  assert.deepEqual([done.state, done.error?.code], ['failed', 'INSUFFICIENT_STORAGE']);
  assert.equal(w.svc.list().find((x) => x.id === download.id)?.state, 'failed');
  await assert.rejects(w.svc.outcome(download.id, 1000), (e: unknown) => e instanceof DomainError && e.code === 'INSUFFICIENT_STORAGE');
  assert.equal(existsSync(w.layout.imagePart('test-os.qcow2')), false);
  // The database still says running: with room again, the next start resumes it and it completes.
  assert.equal(w.downloads.get(download.id)?.state, 'running');
  full = false;
  armed = false;
  const svc = w.restart();
  assert.equal((await svc.recover()).resumed, 1);
  assert.equal((await svc.wait(download.id, 10_000)).state, 'completed');
});

test('an image larger than the free space is refused before a byte is written (a full disk would stop the VMs on it too)', async () => {
  const w = world({ files: (real) => ({ ...bind(real), freeBytes: async () => 100_000 }) });
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.deepEqual([done.state, done.error?.code, done.retries], ['failed', 'INSUFFICIENT_STORAGE', 0]);
  assert.equal(done.error!.reason, `the image needs ${w.data.length} more bytes and the disk holding the images folder has 100000 free; free some space and pull again`);
  assert.equal(done.totalBytes, w.data.length);
  assert.equal(existsSync(w.layout.imagePart('test-os.qcow2')), false);
});

test('ensure: resolves with the local image, starting or joining the download; rejects with the failure\'s code', async () => {
  const w = world({ catalog: { distros: [distro('test-os', IMG), distro('bad', 'http://mirror.test/img/bad.qcow2', { checksumUrl: undefined, sha256: 'cd'.repeat(32) })] } });
  w.fetcher.files.set('http://mirror.test/img/bad.qcow2', w.data);
  const [a, b] = await Promise.all([w.svc.ensure('test-os'), w.svc.ensure('test-os')]);
  assert.deepEqual(a, b);
  assert.equal(a.path, w.layout.image('test-os.qcow2'));
  assert.equal(imageCalls(w).length, 1);
  assert.deepEqual(await w.svc.ensure('test-os'), a);
  await assert.rejects(w.svc.ensure('bad'), (e: unknown) => e instanceof DomainError && e.code === 'CHECKSUM_MISMATCH' && /download of 'bad' failed/.test(e.message));
  await assert.rejects(w.svc.ensure('nope'), (e: unknown) => e instanceof DomainError && e.code === 'DISTRO_NOT_FOUND');
});

test('removeImage deletes the file and the record; an image deleted by hand is forgotten and downloaded again', async () => {
  const w = world();
  const img = await w.svc.ensure('test-os');
  assert.deepEqual(await w.svc.removeImage('test-os'), img);
  assert.equal(existsSync(img.path), false);
  assert.equal(w.svc.localImage('test-os'), undefined);
  await assert.rejects(w.svc.removeImage('test-os'), (e: unknown) => e instanceof DomainError && e.code === 'NOT_FOUND');

  await w.svc.ensure('test-os');
  rmSync(img.path);
  const [listed] = await w.svc.distros();
  assert.deepEqual([listed!.downloaded, listed!.image], [false, null], 'the listing does not claim a file that is gone');
  const again = await w.svc.start('test-os');
  assert.equal(again.outcome, 'started');
  assert.equal((await finished(w, again.download.id)).state, 'completed');
});

test('a file already at the image\'s name is adopted when it verifies, refused (CONFLICT) when it does not', async () => {
  const w = world();
  writeFileSync(w.layout.image('test-os.qcow2'), w.data);
  const done = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(done.state, 'completed');
  assert.equal(imageCalls(w).length, 0, 'nothing downloaded');
  await w.svc.removeImage('test-os');
  writeFileSync(w.layout.image('test-os.qcow2'), 'not the image');
  const clash = await finished(w, (await w.svc.start('test-os')).download.id);
  assert.equal(clash.error?.code, 'CONFLICT');
  assert.equal(readFileSync(w.layout.image('test-os.qcow2'), 'utf8'), 'not the image', 'the other file is left alone');
});

test('unknown distro: DISTRO_NOT_FOUND', async () => {
  const w = world();
  await assert.rejects(w.svc.start('nope'), (e: unknown) => e instanceof DomainError && e.code === 'DISTRO_NOT_FOUND');
});

function bind(f: ImageFiles): ImageFiles {
  return { size: f.size.bind(f), read: f.read.bind(f), openPart: f.openPart.bind(f), promote: f.promote.bind(f), remove: f.remove.bind(f), freeBytes: f.freeBytes.bind(f) };
}
