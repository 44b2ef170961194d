import { followEvents, type Distro, type Download, type GroveEvent } from '../../client/index.js';
import type { Column } from '../format.js';
import { EXIT, type Command, type Context } from '../command.js';
import { bytes, json } from '../output.js';
import { progressLine } from '../progress.js';

function localState(d: Distro): string {
  const dl = d.download;
  return d.downloaded ? 'yes'
    : dl?.state === 'running' ? `downloading${dl.totalBytes ? ` ${Math.floor((dl.bytes / dl.totalBytes) * 100)}%` : ''}`
      : dl?.state === 'queued' ? 'queued' : '-';
}

const DISTRO_COLUMNS: Column<Distro>[] = [
  { name: 'distro', value: (d) => d.id },
  { name: 'name', value: (d) => d.name },
  { name: 'version', value: (d) => d.version },
  { name: 'format', value: (d) => d.format },
  { name: 'local', value: localState },
  { name: 'size', value: (d) => (d.image ? bytes(d.image.bytes) : d.download ? `${bytes(d.download.bytes)}${d.download.totalBytes ? ` / ${bytes(d.download.totalBytes)}` : ''}` : '-') },
];

export const images: Command = {
  name: 'images', synopsis: ['images'], summary: 'The distro catalog: what is local, its size, downloads under way', args: [0, 0], listing: true,
  async run(ctx) {
    ctx.listing(await ctx.client.listDistros(), DISTRO_COLUMNS);
    return EXIT.OK;
  },
};

export const imagesRm: Command = {
  name: 'images rm', aliases: ['delete', 'remove'], synopsis: ['images rm DISTRO'], summary: 'Remove a distro\'s local image', args: [1, 1],
  async run(ctx, _v, [distro]) {
    await ctx.client.removeImage(distro!);
    ctx.out(ctx.json ? json({ removed: true, distro }) : `Removed the image of ${distro}.\n`);
    return EXIT.OK;
  },
};

const DOWNLOAD_EVENTS = new Set(['download.started', 'download.progress', 'download.completed', 'download.failed']);

export const pull: Command = {
  name: 'pull', synopsis: ['pull DISTRO'], summary: 'Download and verify a distro image (progress bar on a terminal)',
  help: `Starts the download (or follows the one already under way) and shows its progress until the image is
verified and in the daemon's images folder. On a terminal: a progress bar with size, rate and ETA. With
--json: one JSON event envelope per line (download.started, download.progress, download.completed or
download.failed); for an image already local, one line with its completed download (no events). Fails (exit 1) with the problem code when the download does: DOWNLOAD_FAILED,
CHECKSUM_MISMATCH, CHECKSUM_UNAVAILABLE, INSUFFICIENT_STORAGE, DOWNLOAD_CANCELLED. Ctrl-C stops following;
the download goes on in the daemon.`,
  args: [1, 1],
  async run(ctx, _v, [distro]) {
    return pullImage(ctx, distro!);
  },
};

/** Pulls a distro image, showing its progress as `grove pull` does; the exit code. */
export async function pullImage(ctx: Context, distro: string): Promise<number> {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  try {
    // Subscribed before the download starts, so none of its events can be missed.
    let connected!: () => void;
    const ready = new Promise<void>((r) => { connected = r; });
    const it = followEvents(ctx.client, { types: 'download.*', signal: ac.signal, onConnected: () => connected() })[Symbol.asyncIterator]();
    let next = it.next();
    await Promise.race([ready, next]);
    const dl = await ctx.client.startDownload(distro);
    const view = new PullView(ctx, dl);
    if (dl.state === 'completed') return view.local();
    view.begin();
    for (;;) {
      const r = await next;
      if (r.done) break;
      const e = r.value;
      const data = e.data as Record<string, unknown>;
      next = it.next();
      if (data['downloadId'] !== dl.id || !DOWNLOAD_EVENTS.has(e.type)) continue;
      view.event(e);
      if (e.type === 'download.completed') return view.done(Number(data['bytes']), String(data['algorithm']));
      if (e.type === 'download.failed') return view.failed(String(data['reason']), String(data['code']));
    }
    if (!ac.signal.aborted) {
      // The stream ended without the outcome (it cannot be resumed): ask for it.
      const now = await ctx.client.getDownload(dl.id);
      if (now.state === 'completed') return view.done(now.bytes, now.algorithm ?? 'checksum');
      if (now.state === 'failed' || now.state === 'cancelled') return view.failed(now.error?.reason ?? now.state, now.error?.code ?? 'DOWNLOAD_FAILED');
    }
    view.clear();
    ctx.err(`grove: stopped following; download ${dl.id} of ${distro} goes on in the daemon (grove pull ${distro} follows it again)\n`);
    return 130;
  } finally {
    process.removeListener('SIGINT', stop);
    ac.abort();
  }
}

/** What `grove pull` shows: JSON lines, a redrawn bar on a terminal, or a line at the start and the end. */
class PullView {
  private readonly tty = !!process.stdout.isTTY;
  private drawn = false;

  constructor(private readonly ctx: Context, private readonly dl: Download) {}

  begin(): void {
    if (this.ctx.json) return;
    if (!this.tty) { this.ctx.out(`Pulling ${this.dl.distro} from ${this.dl.url}\n`); return; }
    this.draw({ bytes: this.dl.bytes, totalBytes: this.dl.totalBytes, bytesPerSecond: null }, this.dl.state === 'queued' ? ' (queued)' : '');
  }

  event(e: GroveEvent): void {
    if (this.ctx.json) { this.ctx.out(JSON.stringify(e) + '\n'); return; }
    if (!this.tty) return;
    const data = e.data as Record<string, unknown>;
    if (e.type === 'download.progress') {
      this.draw({ bytes: Number(data['bytes']), totalBytes: numOrNull(data['totalBytes']), bytesPerSecond: numOrNull(data['bytesPerSecond']) });
    }
  }

  /** The image was local already: its completed download (one JSON line with --json). */
  local(): number {
    this.ctx.out(this.ctx.json ? JSON.stringify(this.dl) + '\n' : `${this.dl.distro} is already local: ${bytes(this.dl.bytes)} (${this.dl.file}).\n`);
    return EXIT.OK;
  }

  done(size: number, algorithm: string): number {
    if (this.ctx.json) return EXIT.OK;
    this.clear();
    this.ctx.out(`Pulled ${this.dl.distro}: ${bytes(size)}, ${algorithm.toUpperCase()} verified (${this.dl.file}).\n`);
    return EXIT.OK;
  }

  failed(reason: string, code: string): number {
    this.clear();
    this.ctx.err(`grove: pull ${this.dl.distro}: ${reason} (${code})\n`);
    return EXIT.ERROR;
  }

  clear(): void {
    if (this.drawn) { this.ctx.out('\r\x1b[K'); this.drawn = false; }
  }

  private draw(p: { bytes: number; totalBytes: number | null; bytesPerSecond: number | null }, note = ''): void {
    const width = process.stdout.columns || 80;
    this.ctx.out(`\r${progressLine(this.dl.distro, p, width - note.length - 1)}${note}\x1b[K`);
    this.drawn = true;
  }
}

function numOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
