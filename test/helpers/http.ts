import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any;
}

/**
 * A plain HTTP/1.1 request with full control over headers that fetch() will not let a caller set
 * (notably `Host`). The body, when given, is sent as is.
 */
export function rawRequest(port: number, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path,
      headers: { host: `127.0.0.1:${port}`, ...(opts.headers ?? {}) },
      // One connection per request: a refused request never poisons a pooled socket.
      agent: false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        let json: unknown;
        try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`${opts.method ?? 'GET'} ${opts.path}: no answer`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/**
 * Sends a request for a streaming endpoint and returns the status line and headers only, then drops
 * the connection (for endpoints such as SSE whose body never ends).
 */
export function headOnly(port: number, opts: { path: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: 'GET', path: opts.path,
      headers: { host: `127.0.0.1:${port}`, ...(opts.headers ?? {}) }, agent: false,
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        resolve({ status, headers: res.headers, body: '' });
        res.on('error', () => undefined);
        req.destroy();
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status, headers: res.headers, body }));
    });
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`GET ${opts.path}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}
