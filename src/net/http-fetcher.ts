import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { HttpRefused, type GetOptions, type HttpFetcher, type HttpHead, type HttpResponse } from '../ports/downloads.js';

export interface NodeHttpFetcherOptions {
  /** A connection that brings no byte for this long is dropped (and the download retried). */
  idleTimeoutMs: number;
  /** Redirects followed per request (mirrors redirect, e.g. download.fedoraproject.org). */
  maxRedirects: number;
  userAgent: string;
}

/**
 * GET over node:http/https: redirects followed, Range/If-Range sent, the response head parsed for the
 * download manager. The body is the IncomingMessage itself, so it streams with backpressure; a socket that
 * closes or goes idle mid-body is an error thrown from the iteration.
 */
export class NodeHttpFetcher implements HttpFetcher {
  constructor(private readonly o: NodeHttpFetcherOptions) {}

  async get(url: string, opts: GetOptions): Promise<HttpResponse> {
    let target = url;
    for (let hop = 0; ; hop++) {
      const res = await this.once(target, opts);
      const location = res.headers.location;
      if (res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && location) {
        res.resume();
        if (hop >= this.o.maxRedirects) throw new HttpRefused(`more than ${this.o.maxRedirects} redirects from ${url}`);
        const next = new URL(location, target);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new HttpRefused(`redirect to a non-http URL (${next.protocol})`);
        // A sums file fetched over https must not be swapped for one anybody on the path could write.
        if (new URL(target).protocol === 'https:' && next.protocol === 'http:') throw new HttpRefused(`refusing a redirect from https to ${next.href}`);
        target = next.href;
        continue;
      }
      return {
        head: head(res),
        body: res,
        discard: () => { res.destroy(); },
      };
    }
  }

  private once(url: string, opts: GetOptions): Promise<IncomingMessage> {
    const u = new URL(url);
    const headers: Record<string, string> = { 'user-agent': this.o.userAgent, accept: '*/*', 'accept-encoding': 'identity' };
    if (opts.from !== undefined && opts.from > 0) {
      headers['range'] = `bytes=${opts.from}-`;
      if (opts.ifRange) headers['if-range'] = opts.ifRange;
    }
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let response: IncomingMessage | null = null;
      const req = request(u, { method: 'GET', headers, signal: opts.signal }, (res) => {
        response = res;
        resolve(res);
      });
      // The idle timer stays on the socket for the body too: a server that stops sending mid-file is a
      // drop, reported as such (destroying the request instead would surface as a bare "aborted").
      req.setTimeout(this.o.idleTimeoutMs, () => {
        const err = new Error(`no data for ${this.o.idleTimeoutMs / 1000} s`);
        if (response) response.destroy(err); else req.destroy(err);
      });
      req.on('error', reject);
      req.end();
    });
  }
}

function head(res: IncomingMessage): HttpHead {
  const num = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : null);
  const cr = res.headers['content-range'];
  let contentRange: HttpHead['contentRange'] = null;
  let unsatisfiedTotal: number | null = null;
  if (typeof cr === 'string') {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim());
    if (m) contentRange = { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
    const u = /^bytes \*\/(\d+)$/.exec(cr.trim());
    if (u) unsatisfiedTotal = Number(u[1]);
  }
  const etag = res.headers.etag;
  // A weak ETag may not be used in If-Range (RFC 9110 §13.1.5); Last-Modified may.
  const validator = typeof etag === 'string' && !etag.startsWith('W/') ? etag : (res.headers['last-modified'] ?? null);
  return {
    status: res.statusCode ?? 0,
    statusText: res.statusMessage ?? '',
    contentLength: num(res.headers['content-length']),
    contentRange,
    unsatisfiedTotal,
    validator,
  };
}
