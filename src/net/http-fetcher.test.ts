import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { HttpRefused } from '../ports/downloads.js';
import { NodeHttpFetcher } from './http-fetcher.js';

let srv: Server;
let base: string;
const seen: Record<string, string | undefined>[] = [];

before(async () => {
  srv = createServer((req, res) => {
    seen.push({ url: req.url, range: req.headers.range, ifRange: String(req.headers['if-range'] ?? '') || undefined });
    if (req.url === '/redirect') { res.writeHead(302, { location: '/file' }).end(); return; }
    if (req.url === '/loop') { res.writeHead(302, { location: '/loop' }).end(); return; }
    if (req.url === '/to-file') { res.writeHead(302, { location: 'file:///etc/passwd' }).end(); return; }
    if (req.url === '/stall') { res.writeHead(200, { 'content-length': 100 }); res.write('x'.repeat(10)); return; }
    if (req.url === '/file') {
      const body = Buffer.from('0123456789');
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && Number(m[1]) >= body.length) { res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end(); return; }
      if (m) {
        const start = Number(m[1]);
        res.writeHead(206, { 'content-range': `bytes ${start}-9/10`, 'content-length': 10 - start, etag: 'W/"weak"', 'last-modified': 'Tue, 01 Dec 2026 00:00:00 GMT' });
        res.end(body.subarray(start));
        return;
      }
      res.writeHead(200, { 'content-length': 10, etag: '"strong"' }).end(body);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const a = srv.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});

after(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));

const fetcher = new NodeHttpFetcher({ idleTimeoutMs: 300, maxRedirects: 3, userAgent: 'grove-test' });
const signal = () => new AbortController().signal;
async function text(body: AsyncIterable<Buffer>): Promise<string> {
  let s = '';
  for await (const c of body) s += c.toString();
  return s;
}

test('a whole file: status, length, a strong ETag as validator; no Range sent', async () => {
  const r = await fetcher.get(`${base}/file`, { signal: signal() });
  assert.deepEqual(r.head, { status: 200, statusText: 'OK', contentLength: 10, contentRange: null, unsatisfiedTotal: null, validator: '"strong"' });
  assert.equal(await text(r.body), '0123456789');
  assert.equal(seen.at(-1)!['range'], undefined);
});

test('a resume: Range and If-Range sent, Content-Range parsed; a weak ETag gives way to Last-Modified', async () => {
  const r = await fetcher.get(`${base}/file`, { from: 4, ifRange: '"strong"', signal: signal() });
  assert.equal(r.head.status, 206);
  assert.deepEqual(r.head.contentRange, { start: 4, end: 9, total: 10 });
  assert.equal(r.head.validator, 'Tue, 01 Dec 2026 00:00:00 GMT');
  assert.equal(await text(r.body), '456789');
  assert.deepEqual([seen.at(-1)!['range'], seen.at(-1)!['ifRange']], ['bytes=4-', '"strong"']);
  const done = await fetcher.get(`${base}/file`, { from: 10, signal: signal() });
  assert.deepEqual([done.head.status, done.head.unsatisfiedTotal], [416, 10]);
  done.discard();
});

test('redirects are followed, up to the limit; a loop or a redirect to another scheme is refused as such (no use retrying)', async () => {
  const r = await fetcher.get(`${base}/redirect`, { signal: signal() });
  assert.equal(await text(r.body), '0123456789');
  await assert.rejects(fetcher.get(`${base}/loop`, { signal: signal() }), (e: unknown) => e instanceof HttpRefused && /more than 3 redirects/.test(e.message));
  await assert.rejects(fetcher.get(`${base}/to-file`, { signal: signal() }), (e: unknown) => e instanceof HttpRefused && /redirect to a non-http URL \(file:\)/.test(e.message));
});

test('a body that stops arriving is a dropped connection after the idle timeout', async () => {
  const r = await fetcher.get(`${base}/stall`, { signal: signal() });
  await assert.rejects(text(r.body), /^Error: no data for 0\.3 s$/);
});

test('an abort ends the request', async () => {
  const ac = new AbortController();
  const r = await fetcher.get(`${base}/stall`, { signal: ac.signal });
  const reading = text(r.body);
  ac.abort();
  await assert.rejects(reading);
});
