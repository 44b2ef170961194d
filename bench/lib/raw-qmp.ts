import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The reference QMP client: a unix socket, one JSON line out, wait for the next `return`/`error` line
 * (events are skipped). Nothing else — no ids, no timers, no event fan-out — so it stands for "the two
 * QMP commands sent directly to QEMU".
 */
export class RawQmp {
  private buf = '';
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private greeted!: () => void;
  private readonly greeting = new Promise<void>((r) => { this.greeted = r; });
  /** Resolves when QEMU closes the connection (e.g. it exited). */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.on('error', () => { /* surfaces as close */ });
    socket.on('close', () => {
      for (const w of this.waiting.splice(0)) w.reject(new Error('QMP connection closed'));
    });
    socket.on('data', (chunk: Buffer) => {
      this.buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line.trim() === '') continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('QMP' in msg) this.greeted();
        else if ('return' in msg) this.waiting.shift()?.resolve(msg['return']);
        else if ('error' in msg) this.waiting.shift()?.reject(new Error(`QMP error: ${JSON.stringify(msg['error'])}`));
      }
    });
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<RawQmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection({ path });
          s.once('connect', () => { s.off('error', reject); resolve(s); });
          s.once('error', reject);
        });
        const q = new RawQmp(socket);
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([q.greeting, new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no QMP greeting on ${path}`)), Math.max(1, deadline - Date.now()));
          })]);
        } catch (e) {
          q.close();
          throw e;
        } finally {
          clearTimeout(timer);
        }
        await q.execute('qmp_capabilities');
        return q;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (Date.now() > deadline || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw e;
        await sleep(10);
      }
    }
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
