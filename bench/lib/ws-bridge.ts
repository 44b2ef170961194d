import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { onCleanup } from './cleanup.js';

/**
 * A WebSocket-to-unix-socket bridge as websockify is: what a person runs to attach noVNC (which speaks RFB
 * only over a WebSocket) to QEMU's VNC socket by hand. No auth, no Origin check, no RFB parsing: every
 * binary message is written to the socket and every chunk read from it is sent as one binary message.
 * Runs in the calling process, as the daemon does in the benchmark, so both share an event loop alike.
 */
export async function startWsBridge(socketPath: string): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const http = createServer((_req, res) => { res.writeHead(426).end(); });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    const sock = connect(socketPath);
    sock.on('data', (d: Buffer) => ws.send(d, { binary: true }));
    sock.on('close', () => ws.close());
    sock.on('error', () => ws.terminate());
    ws.on('message', (d: Buffer) => sock.write(d));
    ws.on('close', () => sock.destroy());
    ws.on('error', () => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => { http.once('error', reject); http.listen(0, '127.0.0.1', () => resolve()); });
  const { port } = http.address() as AddressInfo;
  const close = onCleanup(`WebSocket bridge on port ${port}`, async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => { wss.close(() => r()); });
    await new Promise<void>((r) => { http.close(() => r()); });
  });
  return { url: `ws://127.0.0.1:${port}/`, connections: () => connections, close };
}
