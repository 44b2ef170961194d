import { connect } from 'node:net';
import { Agent } from 'node:http';
import WebSocket from 'ws';

/** Bytes both ways, over whatever carries RFB: a WebSocket (binary frames) or QEMU's unix socket itself. */
interface Transport {
  send(data: Buffer): void;
  close(): void;
}

export interface ServerInit {
  version: string;
  securityTypes: number[];
  width: number;
  height: number;
  bitsPerPixel: number;
  name: string;
}

/**
 * A minimal RFB 3.8 client (RFC 6143) for tests and benchmarks: handshake with security type None, raw
 * encoding only, framebuffer update requests, and a count of the FramebufferUpdate messages that arrive.
 */
export class RfbClient {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended: Error | null = null;
  private transport!: Transport;
  init: ServerInit | null = null;
  /** FramebufferUpdate messages received so far (complete ones). */
  updates = 0;
  bytes = 0;

  private constructor() {}

  private push(d: Buffer): void {
    this.bytes += d.length;
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    this.wake?.();
  }

  private end(e: Error): void {
    this.ended ??= e;
    this.wake?.();
  }

  /** Over the daemon's WebSocket; rejects with the HTTP status when the upgrade is refused. */
  static overWebSocket(url: string, headers: Record<string, string>): Promise<RfbClient> {
    return new Promise((resolve, reject) => {
      const c = new RfbClient();
      const ws = new WebSocket(url, { headers, agent: new Agent({ keepAlive: false }) });
      ws.binaryType = 'nodebuffer';
      ws.on('message', (d: Buffer, isBinary: boolean) => { if (isBinary) c.push(d); else c.end(new Error('a text frame on the RFB WebSocket')); });
      ws.on('close', (code, reason) => c.end(new Error(`WebSocket closed ${code} ${reason.toString()}`)));
      ws.on('error', (e) => { c.end(e); reject(e); });
      ws.on('unexpected-response', (req, res) => { req.destroy(); reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)); });
      ws.on('open', () => {
        c.transport = { send: (b) => ws.send(b, { binary: true }), close: () => ws.close() };
        resolve(c);
      });
    });
  }

  /** Straight to QEMU's VNC unix socket, as a viewer attached by hand would be. */
  static overUnixSocket(path: string): Promise<RfbClient> {
    return new Promise((resolve, reject) => {
      const c = new RfbClient();
      const s = connect(path);
      s.on('data', (d: Buffer) => c.push(d));
      s.on('close', () => c.end(new Error('socket closed')));
      s.on('error', (e) => { c.end(e); reject(e); });
      s.on('connect', () => {
        c.transport = { send: (b) => s.write(b), close: () => s.destroy() };
        resolve(c);
      });
    });
  }

  private async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** ProtocolVersion, security None, ClientInit (shared), ServerInit. */
  async handshake(): Promise<ServerInit> {
    const version = (await this.read(12)).toString('latin1');
    this.transport.send(Buffer.from('RFB 003.008\n', 'latin1'));
    const count = (await this.read(1))[0]!;
    if (count === 0) throw new Error(`server refused: ${(await this.read((await this.read(4)).readUInt32BE(0))).toString()}`);
    const securityTypes = [...(await this.read(count))];
    this.transport.send(Buffer.from([1]));
    const result = (await this.read(4)).readUInt32BE(0);
    if (result !== 0) throw new Error(`security None refused (${result})`);
    this.transport.send(Buffer.from([1]));
    const head = await this.read(24);
    const name = (await this.read(head.readUInt32BE(20))).toString('utf8');
    this.init = { version, securityTypes, width: head.readUInt16BE(0), height: head.readUInt16BE(2), bitsPerPixel: head[4]!, name };
    // SetEncodings: raw only, so every client (WebSocket or not) gets the same bytes.
    const enc = Buffer.alloc(8);
    enc.writeUInt8(2, 0);
    enc.writeUInt16BE(1, 2);
    enc.writeInt32BE(0, 4);
    this.transport.send(enc);
    return this.init;
  }

  requestUpdate(incremental: boolean): void {
    const { width, height } = this.init!;
    const m = Buffer.alloc(10);
    m.writeUInt8(3, 0);
    m.writeUInt8(incremental ? 1 : 0, 1);
    m.writeUInt16BE(width, 6);
    m.writeUInt16BE(height, 8);
    this.transport.send(m);
  }

  /** Reads server messages until one FramebufferUpdate is complete; returns its rectangles. */
  async nextUpdate(): Promise<{ x: number; y: number; w: number; h: number; encoding: number }[]> {
    for (;;) {
      const type = (await this.read(1))[0]!;
      if (type === 0) {
        const n = (await this.read(3)).readUInt16BE(1);
        const rects = [];
        for (let i = 0; i < n; i++) {
          const r = await this.read(12);
          const rect = { x: r.readUInt16BE(0), y: r.readUInt16BE(2), w: r.readUInt16BE(4), h: r.readUInt16BE(6), encoding: r.readInt32BE(8) };
          if (rect.encoding === 0) await this.read(rect.w * rect.h * (this.init!.bitsPerPixel / 8));
          else if (rect.encoding === -223) { this.init!.width = rect.w; this.init!.height = rect.h; } // DesktopSize
          else throw new Error(`unexpected encoding ${rect.encoding}`);
          rects.push(rect);
        }
        this.updates++;
        return rects;
      }
      if (type === 1) { const h = await this.read(5); await this.read(h.readUInt16BE(3) * 6); continue; }
      if (type === 2) continue;
      if (type === 3) { const h = await this.read(7); await this.read(h.readUInt32BE(3)); continue; }
      throw new Error(`unknown server message type ${type}`);
    }
  }

  /**
   * Keeps one incremental request outstanding for `ms` (what a viewer does) and counts the updates
   * that answer them: the screen's frame rate as this client sees it.
   */
  async frameRate(ms: number): Promise<{ updates: number; fps: number; bytes: number }> {
    const start = Date.now();
    const startBytes = this.bytes;
    let updates = 0;
    this.requestUpdate(true);
    while (Date.now() - start < ms) {
      await this.nextUpdate();
      updates++;
      this.requestUpdate(true);
    }
    const s = (Date.now() - start) / 1000;
    return { updates, fps: updates / s, bytes: this.bytes - startBytes };
  }

  /** Whether the other side has gone (closed or errored). */
  get closed(): boolean {
    return this.ended !== null;
  }

  close(): void {
    this.transport.close();
  }
}
