import http from 'node:http';

/**
 * A lean JSON client over one keep-alive connection (node:http, not fetch: undici's per-request overhead
 * would be charged to the daemon). Used for the sequential round trips of pause/resume, start and stop.
 */
export class ApiClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly base: URL;

  constructor(apiUrl: string, private readonly token: string) {
    this.base = new URL(apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  }

  call(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<{ status: number; body: any }> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like call() but throws unless the status is `expect`. */
  async ok(method: string, path: string, body?: unknown, expect = 200, timeoutMs?: number): Promise<any> {
    const r = await this.call(method, path, body, timeoutMs);
    if (r.status !== expect) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}
