import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RawEvent {
  event: string;
  data: Record<string, unknown>;
}

/**
 * The reference QMP client: a unix socket, one JSON line out, wait for the next `return`/`error` line — it
 * stands for "the same QMP commands sent directly to QEMU". Job- and migration-style work also needs to
 * wait for an event: a waiter is registered before the command that causes it is sent, so nothing is
 * missed. No ids, no query-jobs fallback, no timers beyond the caller's timeout.
 */
export class RawQmp {
  private buf = '';
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private eventWaiters: { pred: (e: RawEvent) => boolean; resolve: (e: RawEvent) => void; reject: (e: Error) => void }[] = [];
  private greeted!: () => void;
  private readonly greeting = new Promise<void>((r) => { this.greeted = r; });
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.on('error', () => { /* surfaces as close */ });
    socket.on('close', () => {
      for (const w of this.waiting.splice(0)) w.reject(new Error('QMP connection closed'));
      for (const w of this.eventWaiters.splice(0)) w.reject(new Error('QMP connection closed'));
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
        else if ('event' in msg) {
          const ev: RawEvent = { event: String(msg['event']), data: (msg['data'] ?? {}) as Record<string, unknown> };
          const i = this.eventWaiters.findIndex((w) => w.pred(ev));
          if (i !== -1) this.eventWaiters.splice(i, 1)[0]!.resolve(ev);
        }
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
        await sleep(5);
      }
    }
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  /** Call before sending the command that causes the event. */
  waitEvent(pred: (e: RawEvent) => boolean, timeoutMs = 120_000): Promise<RawEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.eventWaiters.indexOf(w);
        if (i !== -1) this.eventWaiters.splice(i, 1);
        reject(new Error(`no matching QMP event within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        pred,
        resolve: (e: RawEvent) => { clearTimeout(timer); resolve(e); },
        reject: (e: Error) => { clearTimeout(timer); reject(e); },
      };
      this.eventWaiters.push(w);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
