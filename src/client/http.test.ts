import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GroveClient } from './client.js';
import { ApiError } from './errors.js';
import { fetchWithoutTimeouts, waitBound } from './http.js';

/** A daemon stand-in that answers every request after `delayMs`. */
async function slowServer(delayMs: number): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'x', name: 'slow', path: req.url, body: body ? JSON.parse(body) as unknown : null }));
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('a call that waits on the daemon is bounded by its own wait, not by the client default', async () => {
  // The default is shortened to 200 ms; the answer comes after 1.5 s; stop's own wait (1 s + margin) covers it.
  const { server, url } = await slowServer(1500);
  try {
    const client = new GroveClient({ url, token: 't', defaultTimeoutMs: 200 });
    const vm = await client.stopVm('slow', { timeoutSeconds: 1 });
    assert.equal((vm as unknown as { path: string }).path, '/api/v1/vms/slow/stop');
    const started = await client.startVm('slow', { waitFor: { console: 'login:', timeoutSeconds: 1 } });
    assert.equal((started as unknown as { path: string }).path, '/api/v1/vms/slow/start');
  } finally {
    server.close();
  }
});

test('a plain call past the client default ends with a TIMEOUT error', async () => {
  const { server, url } = await slowServer(1500);
  try {
    const client = new GroveClient({ url, token: 't', defaultTimeoutMs: 200 });
    await assert.rejects(client.listVms(), (e: unknown) => e instanceof ApiError && e.code === 'TIMEOUT');
  } finally {
    server.close();
    server.closeAllConnections();
  }
});

test('wait bounds: the call\'s seconds (or the daemon\'s default for it) plus a margin', () => {
  assert.equal(waitBound(3600, 60), 3_630_000);
  assert.equal(waitBound(undefined, 60), 90_000);
  assert.equal(waitBound(400, 60), 430_000);
});

test('the MCP bridge\'s fetch: a streamed Response from node:http, with status, headers and body', async () => {
  const { server, url } = await slowServer(50);
  try {
    const res = await fetchWithoutTimeouts(`${url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { id: 'x', name: 'slow', path: '/mcp', body: { a: 1 } });
  } finally {
    server.close();
  }
});

test('a guest file upload is streamed through node:http, never buffered whole', async () => {
  // The source yields its second half only once the server has received bytes of the first: a client that
  // buffered the whole body before sending would never finish.
  let firstArrived!: () => void;
  const arrived = new Promise<void>((r) => { firstArrived = r; });
  let bytes = 0;
  let encoding: string | undefined;
  const server = createServer((req, res) => {
    encoding = req.headers['transfer-encoding'];
    req.on('data', (c: Buffer) => { bytes += c.length; firstArrived(); });
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ path: '/x', bytes })); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    async function* pieces(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(64 * 1024, 1);
      await arrived;
      yield Buffer.alloc(64 * 1024, 2);
    }
    const out = await new GroveClient({ url, token: 't' }).uploadGuestFile('vm', '/x', pieces());
    assert.deepEqual(out, { path: '/x', bytes: 128 * 1024 });
    assert.equal(encoding, 'chunked');
  } finally {
    server.close();
  }
});
