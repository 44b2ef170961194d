import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The reference guest agent client: a unix socket, one JSON line out, the next answer line back — it
 * stands for "the same commands sent by hand on the agent socket". One handshake at connect (0xFF, then
 * guest-sync-delimited until its answer, skipping everything before the 0xFF sentinel); no ids, no
 * queue, no timers after that.
 */
export class RawQga {
  /** The unfinished line, in the pieces it arrived in (joined once: answers carry megabytes of base64). */
  private parts: Buffer[] = [];
  private waiting: ((line: string) => void) | null = null;
  private lines: string[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('error', () => { /* surfaces as a hang the caller's deadline catches */ });
    socket.on('data', (chunk: Buffer) => {
      let rest = chunk;
      let nl: number;
      while ((nl = rest.indexOf(0x0a)) !== -1) {
        this.parts.push(rest.subarray(0, nl));
        let line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
        this.parts = [];
        rest = rest.subarray(nl + 1);
        const ff = line.lastIndexOf(0xff);
        if (ff !== -1) line = line.subarray(ff + 1);
        const text = line.toString('utf8').trim();
        if (text === '') continue;
        if (this.waiting) { const w = this.waiting; this.waiting = null; w(text); } else this.lines.push(text);
      }
      if (rest.length > 0) this.parts.push(rest);
    });
  }

  /** Connects and repeats the handshake until an agent answers it (the guest may still be starting it). */
  static async connect(path: string, timeoutMs = 120_000): Promise<RawQga> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ path });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const q = new RawQga(socket);
    const deadline = Date.now() + timeoutMs;
    for (let id = 1; Date.now() < deadline; id++) {
      socket.write(Buffer.from([0xff]));
      socket.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`);
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        const line = q.lines.shift();
        if (line === undefined) { await sleep(5); continue; }
        if ((JSON.parse(line) as { return?: unknown }).return === id) { q.lines = []; return q; }
      }
    }
    socket.destroy();
    throw new Error(`no guest agent answered on ${path}`);
  }

  /** One command; resolves with its `return`, rejects with its `error`. */
  execute(command: string, args?: Record<string, unknown>): Promise<any> {
    return new Promise((resolve, reject) => {
      this.waiting = (line) => {
        const msg = JSON.parse(line) as { return?: unknown; error?: unknown };
        if ('error' in msg) reject(new Error(`${command}: ${JSON.stringify(msg.error)}`));
        else resolve(msg.return);
      };
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
