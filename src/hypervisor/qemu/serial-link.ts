import { Socket } from 'node:net';
import { constants as fsc, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import type { SerialLink, VmPaths } from '../../ports/hypervisor.js';
import { historySize } from './console-files.js';

const READ_CHUNK = 256 * 1024;
const POLL_MS = 200;

/**
 * The serial console of one running QEMU. Output is tailed from `console.out`, the file QEMU's pipe
 * chardev writes itself, so offsets are exact and identical across daemon restarts; inotify says when it
 * grew, a slow poll backs that up. Input goes into the `console.in` FIFO, which QEMU holds open.
 */
export class QemuSerialLink implements SerialLink {
  private readonly listeners = new Set<(chunk: Buffer, offset: number) => void>();
  private input: Socket | null = null;
  private fh: FileHandle | null = null;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private readonly scratch = Buffer.allocUnsafe(READ_CHUNK);

  private constructor(private readonly paths: VmPaths, private base: number, private pos: number) {}

  static async open(paths: VmPaths, fromOffset: number): Promise<QemuSerialLink> {
    const base = await historySize(paths);
    const link = new QemuSerialLink(paths, base, Math.max(fromOffset, base));
    await link.init();
    return link;
  }

  get offset(): number {
    return this.pos;
  }

  private async init(): Promise<void> {
    this.fh = await open(this.paths.consoleOut, 'r');
    // Non-blocking open succeeds because QEMU holds the FIFO's read end; libuv then writes it as a pipe.
    // A plain fd (not a FileHandle, which would close it when collected): the socket owns and closes it.
    const fd = openSync(this.paths.consoleIn, fsc.O_WRONLY | fsc.O_NONBLOCK);
    this.input = new Socket({ fd, readable: false, writable: true });
    this.input.on('error', () => { /* QEMU gone: the QMP side reports the end */ });
    try {
      this.watcher = watch(this.paths.consoleOut, { persistent: false }, () => this.pull());
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
    const s = this.input;
    if (!s || s.destroyed) throw new Error('serial console is not connected');
    await new Promise<void>((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Reads whatever the file gained; concurrent triggers coalesce into one more pass. */
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
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(this.scratch, 0, READ_CHUNK, this.pos - this.base));
      } catch {
        return;
      }
      if (n === 0 || this.closed) return;
      // A copy: listeners keep chunks, and a view would pin the whole scratch buffer.
      const chunk = Buffer.from(this.scratch.subarray(0, n));
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
    this.input?.destroy();
    if (this.fh) this.fh.close().catch(() => undefined);
    this.fh = null;
    this.listeners.clear();
  }
}
