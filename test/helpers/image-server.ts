import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 standing in for a distro mirror: files from disk (with Range, ETag,
 * Last-Modified and 416 like a real server) and small texts (sums files, catalogs), with switchable faults.
 */
export interface Faults {
  /** Close the socket after this many body bytes, on the next `dropTimes` image requests (default 1). */
  dropAfter?: number;
  dropTimes?: number;
  /** Answer every request with 200 and the whole file, whatever Range says. */
  ignoreRange?: boolean;
  /** Send this many body bytes, then hold the response open (no more data) until release() or close(). */
  stallAfter?: number;
  /** Send this many body bytes, then wait (connection open) until proceed(), then send the rest. */
  pauseAfter?: number;
  /** Answer 404 for these paths. */
  missing?: string[];
}

export interface SeenRequest {
  path: string;
  range: string | null;
  ifRange: string | null;
  status: number;
  /** Body bytes sent (as far as the server knows: a dropped socket may have lost some). */
  sent: number;
}

export interface ImageServer {
  url: string;
  port: number;
  faults: Faults;
  requests: SeenRequest[];
  /** Serves a file from disk at `path`. */
  file(path: string, file: string): void;
  /** Serves a text at `path`. */
  text(path: string, body: string): void;
  /** Ends every held (stalled) response by destroying its socket. */
  release(): void;
  /** Lets every response waiting at `pauseAfter` send the rest of its body. */
  proceed(): void;
  /** Requests for `path`. */
  requestsFor(path: string): SeenRequest[];
  close(): Promise<void>;
}

export async function startImageServer(): Promise<ImageServer> {
  const files = new Map<string, string>();
  const texts = new Map<string, string>();
  const requests: SeenRequest[] = [];
  const held = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const faults: Faults = {};
  let paused: { headOut: boolean; go: boolean; rest(): void }[] = [];

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const seen: SeenRequest = { path, range: header(req, 'range'), ifRange: header(req, 'if-range'), status: 0, sent: 0 };
    requests.push(seen);
    const answer = (status: number, headers: Record<string, string | number> = {}, body?: string): void => {
      seen.status = status;
      res.writeHead(status, headers);
      res.end(body);
    };
    if (faults.missing?.includes(path) || (!files.has(path) && !texts.has(path))) { answer(404, { 'content-type': 'text/plain' }, 'not found\n'); return; }
    const text = texts.get(path);
    if (text !== undefined) { seen.sent = Buffer.byteLength(text); answer(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) }, text); return; }

    const file = files.get(path)!;
    const st = statSync(file);
    const size = st.size;
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const common = { 'accept-ranges': 'bytes', etag, 'last-modified': st.mtime.toUTCString(), 'content-type': 'application/octet-stream' };
    let start = 0;
    let status = 200;
    const m = /^bytes=(\d+)-$/.exec(seen.range ?? '');
    if (m && !faults.ignoreRange && (seen.ifRange === null || seen.ifRange === etag)) {
      start = Number(m[1]);
      if (start >= size) { answer(416, { ...common, 'content-range': `bytes */${size}` }); return; }
      status = 206;
    }
    seen.status = status;
    res.writeHead(status, {
      ...common, 'content-length': size - start, ...(status === 206 ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    let limit = size - start;
    let after: 'end' | 'drop' | 'hold' = 'end';
    if (faults.dropAfter !== undefined && (faults.dropTimes ?? 1) > 0 && faults.dropAfter < limit) {
      faults.dropTimes = (faults.dropTimes ?? 1) - 1;
      [limit, after] = [faults.dropAfter, 'drop'];
    } else if (faults.stallAfter !== undefined && faults.stallAfter < limit) {
      [limit, after] = [faults.stallAfter, 'hold'];
    }
    if (limit <= 0) { finish(); return; }
    if (after === 'end' && faults.pauseAfter !== undefined && faults.pauseAfter < limit) {
      const first = faults.pauseAfter;
      const send = (from: number, to: number, end: boolean, then?: () => void): void => {
        const s = createReadStream(file, { start: from, end: to, highWaterMark: 1024 * 1024 });
        s.on('data', (c) => { seen.sent += c.length; });
        s.on('error', () => res.destroy());
        s.pipe(res, { end });
        if (then) s.on('end', then);
      };
      // The rest goes out once the head is out and proceed() was called, in either order.
      const wait = { headOut: false, go: false, rest: () => send(start + first, start + limit - 1, true) };
      paused.push(wait);
      send(start, start + first - 1, false, () => { wait.headOut = true; if (wait.go) wait.rest(); });
      return;
    }
    const stream = createReadStream(file, { start, end: start + limit - 1, highWaterMark: 1024 * 1024 });
    stream.on('data', (c) => { seen.sent += c.length; });
    stream.on('error', () => res.destroy());
    stream.pipe(res, { end: after === 'end' });
    stream.on('end', finish);

    function finish(): void {
      if (after === 'drop') {
        // Let what was written reach the socket, then cut it: the client sees a body shorter than its length.
        res.once('drain', () => res.socket?.destroy());
        if (!res.writableNeedDrain) res.socket?.end(() => res.socket?.destroy());
      } else if (after === 'hold') {
        held.add(res);
      }
    }
  };

  const srv: Server = createServer(handler);
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`, port, faults, requests,
    file: (path, file) => { files.set(path, file); },
    text: (path, body) => { texts.set(path, body); },
    release: () => { for (const r of held) r.socket?.destroy(); held.clear(); },
    proceed: () => {
      for (const w of paused.splice(0)) { w.go = true; if (w.headOut) w.rest(); }
    },
    requestsFor: (path) => requests.filter((r) => r.path === path),
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    }),
  };
}

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return typeof v === 'string' ? v : null;
}

/** A file of random bytes and its digests. */
export function makeImage(path: string, bytes: number): { path: string; bytes: number; sha256: string; sha512: string } {
  const data = randomBytes(bytes);
  writeFileSync(path, data);
  return {
    path, bytes,
    sha256: createHash('sha256').update(data).digest('hex'),
    sha512: createHash('sha512').update(data).digest('hex'),
  };
}
