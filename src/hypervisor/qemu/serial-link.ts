import { createConnection, type Socket } from 'node:net';
import { open, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import type { SerialLink } from '../../ports/hypervisor.js';

const READ_CHUNK = 256 * 1024;
const POLL_MS = 250;

/**
 * The serial console of one running QEMU. Input goes through the chardev socket; output is taken from the
 * log file QEMU writes itself, so offsets are exact file offsets — the same after a daemon restart, with
 * nothing counted twice. Data arriving on the socket (and inotify) only tells us the file grew; a slow
 * poll catches the rare case where QEMU's log write lands after its socket write was seen.
 */
export class QemuSerialLink implements SerialLink {
  private readonly listeners = new Set<(chunk: Buffer, offset: number) => void>();
  private socket: Socket | null = null;
  private fh: FileHandle | null = null;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private pos: number;

  private constructor(private readonly socketPath: string, private readonly logPath: string, from: number) {
    this.pos = from;
  }

  static async open(socketPath: string, logPath: string, fromOffset: number): Promise<QemuSerialLink> {
    const link = new QemuSerialLink(socketPath, logPath, fromOffset);
    await link.init();
    return link;
  }

  get offset(): number {
    return this.pos;
  }

  private async init(): Promise<void> {
    this.fh = await open(this.logPath, 'a+');
    this.socket = await connectUnix(this.socketPath);
    this.socket.on('data', () => this.pull());
    this.socket.on('error', () => { /* the QMP side reports QEMU's end; here it only stops input */ });
    this.socket.on('close', () => { this.socket = null; this.pull(); });
    try {
      this.watcher = watch(this.logPath, { persistent: false }, () => this.pull());
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = null; });
    } catch {
      this.watcher = null;
    }
    this.timer = setInterval(() => this.pull(), POLL_MS);
    this.timer.unref();
    this.pull();
  }

  onData(listener: (chunk: Buffer, offset: number) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async write(data: Buffer): Promise<void> {
    const s = this.socket;
    if (!s || s.destroyed) throw new Error('serial console is not connected');
    await new Promise<void>((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Reads whatever the log gained; coalesces concurrent triggers into one more pass. */
  private pull(): void {
    if (this.closed) return;
    if (this.reading) { this.again = true; return; }
    this.reading = this.drain().finally(() => {
      this.reading = null;
      if (this.again) { this.again = false; this.pull(); }
    });
  }

  private async drain(): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, READ_CHUNK, this.pos));
      } catch {
        return;
      }
      if (n === 0 || this.closed) return;
      const chunk = buf.subarray(0, n);
      const at = this.pos;
      this.pos += n;
      for (const l of this.listeners) l(chunk, at);
      if (n < READ_CHUNK) return;
    }
  }

  /** One last read so output written just before QEMU exited is not lost, then release everything. */
  async flushAndClose(): Promise<void> {
    if (this.closed) return;
    while (this.reading) await this.reading;
    await this.drain();
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.socket?.destroy();
    void this.fh?.close().catch(() => undefined);
    this.fh = null;
    this.listeners.clear();
  }
}

async function connectUnix(path: string, timeoutMs = 5000): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = createConnection(path);
        s.once('connect', () => { s.removeAllListeners('error'); resolve(s); });
        s.once('error', reject);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (Date.now() > deadline || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
