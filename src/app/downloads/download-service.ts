import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { ExpectedDigest } from '../../domain/checksums.js';
import { imageFileName, type Catalog, type Distro } from '../../domain/distro.js';
import { DEFAULT_RETRY, isActiveDownload, type Download, type DownloadFailure, type LocalImage, type RetryPolicy } from '../../domain/download.js';
import { DomainError } from '../../domain/errors.js';
import type { EventType } from '../../domain/events.js';
import type { DownloadRepo, HttpFetcher, ImageFiles, ImageRepo } from '../../ports/downloads.js';
import type { EventSink } from '../../ports/event-sink.js';
import type { Logger } from '../../ports/logger.js';
import { errorMessage } from '../../util/errors.js';
import { expectedDigest } from './expected-digest.js';
import { transfer, TransferFailure } from './transfer.js';

export interface DownloadOptions {
  /** Transfers running at once; the others wait in state queued. */
  concurrency: number;
  retry: RetryPolicy;
  /** At most one download.progress event per download this often. */
  progressIntervalMs: number;
  /** Finished downloads kept in the list (those behind a local image are always kept). */
  keepFinished: number;
}

export const DOWNLOAD_DEFAULTS: DownloadOptions = { concurrency: 2, retry: DEFAULT_RETRY, progressIntervalMs: 500, keepFinished: 200 };

/** The window download rates are averaged over. */
const RATE_WINDOW_MS = 3000;

export interface DownloadServiceDeps {
  catalog: Catalog;
  fetcher: HttpFetcher;
  files: ImageFiles;
  downloads: DownloadRepo;
  images: ImageRepo;
  events: EventSink;
  /** Where images and their partial files live (DataLayout). */
  paths: { image(file: string): string; imagePart(file: string): string };
  log: Logger;
  options?: Partial<DownloadOptions>;
  /** Waits between retries; tests pass one that does not. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** A download as callers see it: the stored record plus its current rate. */
export type DownloadView = Download & { bytesPerSecond: number | null };

export type DistroView = Distro & {
  downloaded: boolean;
  image: Omit<LocalImage, 'distro' | 'url' | 'format' | 'downloadId'> | null;
  /** The queued or running download of this image, if there is one. */
  download: Pick<Download, 'id' | 'state' | 'bytes' | 'totalBytes'> | null;
};

export interface StartOutcome {
  download: DownloadView;
  /** started: a new download; joined: one already queued or running; local: the image is here already. */
  outcome: 'started' | 'joined' | 'local';
}

interface Job {
  id: string;
  distro: Distro;
  ac: AbortController;
  /** Why it was aborted: a caller cancelled it, or the daemon is closing (it resumes at the next start). */
  stop: 'cancel' | 'shutdown' | null;
  settled: Promise<Download>;
  settle(d: Download): void;
  live: { bytes: number; total: number | null; lastEmit: number; emitted: number; samples: { t: number; bytes: number }[]; rate: number | null };
}

const now = (): string => new Date().toISOString();

export const distroNotFound = (id: string): DomainError =>
  new DomainError('DISTRO_NOT_FOUND', `no distro '${id}' in the catalog (GET /api/v1/distros lists them)`, { distro: id });
const downloadNotFound = (id: string): DomainError => new DomainError('NOT_FOUND', `no download with id '${id}'`, { download: id });

/**
 * The distro catalog and the image downloads: one transfer per image at a time (a second request joins
 * it), a bounded number running at once, each verified against its published or pinned digest before it
 * is renamed into images/. Downloads survive a daemon restart: unfinished ones resume at start-up.
 */
export class DownloadService {
  private readonly o: DownloadOptions;
  private readonly byId = new Map<string, Distro>();
  /** Queued and running downloads by distro id. */
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private readonly running = new Map<Job, Promise<void>>();
  /**
   * Ends the database could not record (SQLITE_FULL: the disk under it is full), by id: what callers are
   * told until a later write succeeds. The stored row stays queued or running, so the next start resumes it.
   */
  private readonly unsaved = new Map<string, Download>();
  private closing = false;

  constructor(private readonly d: DownloadServiceDeps) {
    this.o = { ...DOWNLOAD_DEFAULTS, ...(d.options ?? {}) };
    for (const x of d.catalog.distros) this.byId.set(x.id, x);
  }

  // ---- the catalog --------------------------------------------------------------------------------

  /** The catalog with what is local; an image whose file was deleted by hand is not claimed (and forgotten). */
  async distros(): Promise<DistroView[]> {
    const views: DistroView[] = [];
    for (const x of this.d.catalog.distros) {
      const img = await this.checkedLocal(x.id);
      const job = this.jobs.get(x.id);
      const row = job ? this.d.downloads.get(job.id) : undefined;
      views.push({
        ...x,
        downloaded: img !== undefined,
        image: img ? { file: img.file, path: img.path, bytes: img.bytes, algorithm: img.algorithm, digest: img.digest, downloadedAt: img.downloadedAt } : null,
        download: row ? { id: row.id, state: row.state, bytes: job!.live.bytes, totalBytes: job!.live.total ?? row.totalBytes } : null,
      });
    }
    return views;
  }

  distro(id: string): Distro {
    const x = this.byId.get(id);
    if (!x) throw distroNotFound(id);
    return x;
  }

  // ---- downloads ----------------------------------------------------------------------------------

  list(limit = 100): DownloadView[] {
    return this.d.downloads.list(limit).map((r) => this.view(this.unsaved.get(r.id) ?? r));
  }

  get(id: string): DownloadView {
    const r = this.unsaved.get(id) ?? this.d.downloads.get(id);
    if (!r) throw downloadNotFound(id);
    return this.view(r);
  }

  /** Starts the download of a distro's image, or joins the one under way, or answers that it is local. */
  async start(distroId: string): Promise<StartOutcome> {
    const distro = this.distro(distroId);
    if (this.closing) throw new DomainError('CONFLICT', 'the daemon is shutting down');
    const active = this.jobs.get(distro.id);
    if (active) return { download: this.get(active.id), outcome: 'joined' };
    const local = await this.checkedLocal(distro.id);
    // Checked again: another request may have started it while the file was looked at.
    const raced = this.jobs.get(distro.id);
    if (raced) return { download: this.get(raced.id), outcome: 'joined' };
    if (local) return { download: this.view(this.recordFor(local)), outcome: 'local' };

    const t = now();
    const row: Download = {
      id: randomUUID(), distro: distro.id, url: distro.url, file: imageFileName(distro.url), state: 'queued', bytes: 0, totalBytes: null,
      retries: 0, restarts: 0, algorithm: null, expectedDigest: null, validator: null, error: null, createdAt: t, updatedAt: t, startedAt: null, finishedAt: null,
    };
    this.d.downloads.insert(row);
    this.d.downloads.prune(this.o.keepFinished);
    this.enqueue(this.job(row, distro));
    return { download: this.get(row.id), outcome: 'started' };
  }

  /**
   * Cancels a queued or running download and removes its partial file; on a failed one it only removes
   * the partial file that was kept for a later resume. Completed and cancelled ones are refused.
   */
  async cancel(id: string): Promise<DownloadView> {
    const row = this.d.downloads.get(id);
    if (!row) throw downloadNotFound(id);
    if (row.state === 'completed' || row.state === 'cancelled') throw notCancellable(row, `is ${row.state}`);
    const job = this.jobs.get(row.distro);
    if (job?.id === id) {
      const queued = this.queue.indexOf(job);
      if (queued !== -1) {
        this.queue.splice(queued, 1);
        await this.d.files.remove(this.d.paths.imagePart(row.file));
        this.end(job, this.save({ ...this.row(id), state: 'cancelled', finishedAt: now(), error: cancelled() }));
      } else {
        job.stop = 'cancel';
        job.ac.abort(new DomainError('DOWNLOAD_CANCELLED', 'cancelled'));
        // The abort cannot stop a verified file's rename into place: the download completed after all.
        const final = await job.settled;
        if (final.state === 'completed') throw notCancellable(final, 'completed before it could be cancelled');
      }
    } else if (!job) {
      // A newer download of the same image would be writing this very file: it is left alone then.
      await this.d.files.remove(this.d.paths.imagePart(row.file));
    }
    return this.get(id);
  }

  /** Resolves when the download has ended, or after `timeoutMs` with it as it is then. */
  async wait(id: string, timeoutMs: number): Promise<DownloadView> {
    const row = this.d.downloads.get(id);
    if (!row) throw downloadNotFound(id);
    const job = this.jobs.get(row.distro);
    if (job?.id === id) {
      const ac = new AbortController();
      await Promise.race([job.settled, delay(timeoutMs, undefined, { signal: ac.signal }).catch(() => undefined)]);
      ac.abort();
    }
    return this.get(id);
  }

  /**
   * wait() for callers to whom a failed download is their own failure (MCP download_distro): the download
   * once completed, or as it is after `timeoutMs`; a failed or cancelled one rejects with its code.
   */
  async outcome(id: string, timeoutMs: number): Promise<DownloadView> {
    const d = await this.wait(id, timeoutMs);
    if (d.state === 'failed' || d.state === 'cancelled') throw endedError(d);
    return d;
  }

  // ---- images (what VM creation uses) -----------------------------------------------------------

  /** The verified local image of a distro, if there is one. */
  localImage(distroId: string): LocalImage | undefined {
    return this.d.images.get(distroId);
  }

  /** The verified local image of a distro whose file is still there (one deleted by hand is forgotten). */
  verifiedLocal(distroId: string): Promise<LocalImage | undefined> {
    return this.checkedLocal(distroId);
  }

  /**
   * The distro's verified image: at once when it is local, else once the download it starts (or joins)
   * has completed. Rejects with a DomainError carrying the failure's code (DISTRO_NOT_FOUND,
   * DOWNLOAD_FAILED, CHECKSUM_MISMATCH, CHECKSUM_UNAVAILABLE, INSUFFICIENT_STORAGE, DOWNLOAD_CANCELLED).
   */
  async ensure(distroId: string): Promise<LocalImage> {
    const local = await this.checkedLocal(distroId);
    if (local) return local;
    const { download } = await this.start(distroId);
    const job = this.jobs.get(distroId);
    const final = job?.id === download.id ? await job.settled : this.row(download.id);
    if (final.state === 'completed') {
      const img = this.d.images.get(distroId);
      if (img) return img;
    }
    if (final.state === 'queued' || final.state === 'running') {
      throw new DomainError('DOWNLOAD_FAILED', `the daemon is shutting down; the download of '${distroId}' resumes at its next start`, { distro: distroId, download: final.id });
    }
    throw endedError(final);
  }

  /** Deletes a distro's local image (grove images rm). */
  async removeImage(distroId: string): Promise<LocalImage> {
    const img = this.d.images.get(distroId);
    if (!img) throw new DomainError('NOT_FOUND', `distro '${distroId}' has no local image`, { distro: distroId });
    await this.d.files.remove(img.path);
    this.d.images.delete(distroId);
    this.d.log.info({ distro: distroId, file: img.file }, 'image removed');
    return img;
  }

  // ---- start-up and shutdown --------------------------------------------------------------------

  /**
   * At start-up: forgets images whose file is gone, and resumes every download the previous run left
   * queued or running (each rehashes its partial file, then asks for the rest with Range).
   */
  async recover(): Promise<{ resumed: number; imagesForgotten: number }> {
    let imagesForgotten = 0;
    for (const img of this.d.images.list()) if ((await this.checkedLocal(img.distro)) === undefined) imagesForgotten++;
    let resumed = 0;
    for (const row of this.d.downloads.unfinished()) {
      const distro = this.byId.get(row.distro);
      const newer = this.jobs.get(row.distro);
      if (newer) {
        // Asked for again before this ran (the daemon composes recovery before it listens; this is for
        // any other caller): the newer download resumes from the same partial file.
        this.save({ ...row, state: 'cancelled', finishedAt: now(), error: { code: 'DOWNLOAD_CANCELLED', reason: `superseded by download ${newer.id} of the same image, asked for before this one was resumed` } });
        continue;
      }
      if (!distro || distro.url !== row.url) {
        this.save({
          ...row, state: 'failed', finishedAt: now(),
          error: { code: 'DISTRO_NOT_FOUND', reason: distro ? 'the catalog now names another file for this distro' : `'${row.distro}' is no longer in the catalog` },
        });
        continue;
      }
      this.enqueue(this.job(this.save({ ...row, state: 'queued' }), distro));
      resumed++;
    }
    return { resumed, imagesForgotten };
  }

  /** Stops the transfers without marking them: they resume at the next start. */
  async close(): Promise<void> {
    this.closing = true;
    this.queue.length = 0;
    for (const job of [...this.jobs.values()]) {
      job.stop = 'shutdown';
      if (this.running.has(job)) job.ac.abort(new DomainError('DOWNLOAD_FAILED', 'the daemon is shutting down'));
      else this.end(job, this.row(job.id));
    }
    const all = Promise.allSettled([...this.running.values()]);
    await Promise.race([all, delay(5000, undefined, { ref: false })]);
  }

  // ---- internals --------------------------------------------------------------------------------

  private job(row: Download, distro: Distro): Job {
    let settle!: (d: Download) => void;
    const settled = new Promise<Download>((r) => { settle = r; });
    return {
      id: row.id, distro, ac: new AbortController(), stop: null, settled, settle,
      live: { bytes: row.bytes, total: row.totalBytes, lastEmit: 0, emitted: -1, samples: [], rate: null },
    };
  }

  private enqueue(job: Job): void {
    this.jobs.set(job.distro.id, job);
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    while (!this.closing && this.running.size < this.o.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      const p = this.run(job).catch((e: unknown) => {
        this.d.log.error({ err: errorMessage(e), download: job.id }, 'download bookkeeping failed');
      }).finally(() => {
        this.running.delete(job);
        this.pump();
      });
      this.running.set(job, p);
    }
  }

  private async run(job: Job): Promise<void> {
    const part = this.d.paths.imagePart(imageFileName(job.distro.url));
    const queued = this.row(job.id);
    let row = this.save({ ...queued, state: 'running', startedAt: queued.startedAt ?? now(), error: null });
    try {
      const resumeFrom = (await this.d.files.size(part)) ?? 0;
      if (job.stop) return await this.stopped(job, part);
      row = this.save({ ...this.row(job.id), bytes: resumeFrom });
      job.live.bytes = resumeFrom;
      // download.started carries where it begins; the first progress event comes one interval later.
      job.live.lastEmit = performance.now();
      job.live.samples = [{ t: job.live.lastEmit, bytes: resumeFrom }];
      this.emit('download.started', row, { url: row.url, file: row.file, resumeFrom });
      this.d.log.info({ download: row.id, distro: row.distro, url: row.url, resumeFrom }, 'download started');
      const expected = await expectedDigest(job.distro, {
        fetcher: this.d.fetcher, retry: this.o.retry, sleep: this.d.sleep ?? sleep, signal: job.ac.signal,
      });
      row = this.save({ ...this.row(job.id), algorithm: expected.algorithm, expectedDigest: expected.digest });
      const final = this.d.paths.image(row.file);
      if ((await this.d.files.size(final)) !== null) return await this.adopt(job, final, expected, part);

      const { bytes } = await transfer({ url: row.url, part, expected, validator: row.validator, signal: job.ac.signal }, {
        fetcher: this.d.fetcher, files: this.d.files, retry: this.o.retry, sleep: this.d.sleep ?? sleep,
      }, {
        progress: (b, total) => this.progress(job, b, total),
        retrying: (r) => {
          this.save({ ...this.row(job.id), retries: this.row(job.id).retries + 1, bytes: r.bytes });
          this.d.log.warn({ download: job.id, error: r.error, retry: r.retries, inMs: r.delayMs }, 'download interrupted; retrying');
        },
        restarting: (reason) => {
          job.live.samples = [];
          this.save({ ...this.row(job.id), restarts: this.row(job.id).restarts + 1, bytes: 0 });
          this.d.log.warn({ download: job.id, reason }, 'download starts over');
        },
        validator: (v) => { this.save({ ...this.row(job.id), validator: v }); },
      });
      await this.d.files.promote(part, final);
      this.complete(job, { final, bytes, expected });
    } catch (e) {
      if (job.stop) return this.stopped(job, part);
      const failure = failureOf(e);
      if (!(e instanceof TransferFailure) && !(e instanceof DomainError)) this.d.log.error({ err: errorMessage(e), download: job.id }, 'download failed unexpectedly');
      if (!(e instanceof TransferFailure && e.keepPart)) await this.d.files.remove(part).catch(() => undefined);
      const failed = this.saveEnd({ ...this.row(job.id), state: 'failed', finishedAt: now(), error: failure, ...this.liveCounts(job) });
      this.emitLogged('download.failed', failed, { state: 'failed', code: failure.code, reason: failure.reason, bytes: failed.bytes });
      this.d.log.warn({ download: job.id, distro: failed.distro, code: failure.code, reason: failure.reason }, 'download failed');
      this.end(job, failed);
    }
  }

  /** A file already at the image's final name (a crash between rename and record, or put there by hand) is used if it verifies. */
  private async adopt(job: Job, final: string, expected: ExpectedDigest, part: string): Promise<void> {
    const hash = createHash(expected.algorithm);
    const bytes = await this.d.files.read(final, (c) => hash.update(c));
    const digest = hash.digest('hex');
    if (digest !== expected.digest) {
      throw new TransferFailure('CONFLICT', `${final} already exists and is not this image (its ${expected.algorithm.toUpperCase()} differs); move it away and pull again`, true);
    }
    await this.d.files.remove(part);
    job.live.bytes = bytes;
    this.complete(job, { final, bytes, expected });
  }

  private complete(job: Job, r: { final: string; bytes: number; expected: ExpectedDigest }): void {
    const row = this.row(job.id);
    const t = now();
    this.d.images.put({
      distro: row.distro, file: row.file, path: r.final, format: job.distro.format, bytes: r.bytes, algorithm: r.expected.algorithm,
      digest: r.expected.digest, url: row.url, downloadedAt: t, downloadId: row.id,
    });
    // The last progress event says 100 %, however quickly the end came after the one before.
    if (job.live.emitted !== r.bytes) this.emit('download.progress', row, { bytes: r.bytes, totalBytes: r.bytes, bytesPerSecond: job.live.rate });
    const done = this.save({ ...row, state: 'completed', bytes: r.bytes, totalBytes: r.bytes, finishedAt: t, error: null });
    this.emit('download.completed', done, { file: done.file, path: r.final, bytes: r.bytes, algorithm: r.expected.algorithm, digest: r.expected.digest });
    this.d.log.info({ download: done.id, distro: done.distro, bytes: r.bytes, path: r.final }, 'download verified and complete');
    this.end(job, done);
  }

  /** Ends a job stopped by a cancel (partial file removed) or by shutdown (left as it is, to be resumed). */
  private async stopped(job: Job, part: string): Promise<void> {
    if (job.stop === 'shutdown') {
      this.end(job, this.row(job.id));
      return;
    }
    await this.d.files.remove(part).catch(() => undefined);
    this.end(job, this.save({ ...this.row(job.id), state: 'cancelled', finishedAt: now(), error: cancelled(), ...this.liveCounts(job) }));
  }

  private end(job: Job, final: Download): void {
    if (this.jobs.get(job.distro.id) === job) this.jobs.delete(job.distro.id);
    // The slot is free now (not a tick later), so whoever learns of this end sees the next one started.
    if (this.running.delete(job)) this.pump();
    if (final.state === 'cancelled') {
      this.emit('download.failed', final, { state: 'cancelled', code: 'DOWNLOAD_CANCELLED', reason: final.error?.reason ?? 'cancelled', bytes: final.bytes });
      this.d.log.info({ download: final.id, distro: final.distro }, 'download cancelled');
    }
    job.settle(final);
  }

  private progress(job: Job, bytes: number, total: number | null): void {
    const live = job.live;
    live.bytes = bytes;
    live.total = total;
    const t = performance.now();
    if (t - live.lastEmit < this.o.progressIntervalMs) return;
    live.lastEmit = t;
    live.samples = live.samples.filter((s) => t - s.t <= RATE_WINDOW_MS && s.bytes <= bytes);
    const first = live.samples[0];
    live.rate = first && t > first.t ? Math.round(((bytes - first.bytes) * 1000) / (t - first.t)) : null;
    live.samples.push({ t, bytes });
    live.emitted = bytes;
    // Best effort: a progress record the database cannot take (a full disk) must not end the transfer
    // (the transfer's own writes say whether there is room); the live counts go on in memory.
    try {
      const row = this.save({ ...this.row(job.id), bytes, totalBytes: total ?? this.row(job.id).totalBytes });
      this.emit('download.progress', row, { bytes, totalBytes: row.totalBytes, bytesPerSecond: live.rate });
    } catch (e) {
      this.d.log.warn({ download: job.id, err: errorMessage(e) }, 'download progress not recorded');
    }
  }

  /** What the transfer knows beyond the last saved progress (events, and so saves, are throttled). */
  private liveCounts(job: Job): Pick<Download, 'bytes' | 'totalBytes'> {
    return { bytes: job.live.bytes, totalBytes: job.live.total ?? this.row(job.id).totalBytes };
  }

  /** The local image if its file is still there; one deleted by hand is forgotten. */
  private async checkedLocal(distroId: string): Promise<LocalImage | undefined> {
    const img = this.d.images.get(distroId);
    if (!img) return undefined;
    if ((await this.d.files.size(img.path)) !== null) return img;
    this.d.images.delete(distroId);
    this.d.log.warn({ distro: distroId, path: img.path }, 'a downloaded image was deleted outside Grove; it is no longer listed as local (a pull downloads it again)');
    return undefined;
  }

  /** The completed download behind a local image (kept from pruning), or a record of one when it is gone. */
  private recordFor(img: LocalImage): Download {
    const existing = img.downloadId ? this.d.downloads.get(img.downloadId) : undefined;
    if (existing) return existing;
    const row: Download = {
      id: randomUUID(), distro: img.distro, url: img.url, file: img.file, state: 'completed', bytes: img.bytes, totalBytes: img.bytes, retries: 0,
      restarts: 0, algorithm: img.algorithm, expectedDigest: img.digest, validator: null, error: null, createdAt: img.downloadedAt,
      updatedAt: img.downloadedAt, startedAt: img.downloadedAt, finishedAt: img.downloadedAt,
    };
    this.d.downloads.insert(row);
    this.d.images.put({ ...img, downloadId: row.id });
    return row;
  }

  private row(id: string): Download {
    const r = this.d.downloads.get(id);
    if (!r) throw downloadNotFound(id);
    return r;
  }

  private save(d: Download): Download {
    const row = { ...d, updatedAt: now() };
    this.d.downloads.update(row);
    this.unsaved.delete(row.id);
    return row;
  }

  /** save() for a download's end, which must be known even when the database cannot take it. */
  private saveEnd(d: Download): Download {
    try {
      return this.save(d);
    } catch (e) {
      const row = { ...d, updatedAt: now() };
      this.unsaved.set(row.id, row);
      this.d.log.error({ download: d.id, state: d.state, err: errorMessage(e) }, 'the end of a download could not be recorded; it is resumed at the next start');
      return row;
    }
  }

  private emitLogged(type: EventType, d: Download, data: Record<string, unknown>): void {
    try {
      this.emit(type, d, data);
    } catch (e) {
      this.d.log.error({ download: d.id, type, err: errorMessage(e) }, 'download event could not be stored');
    }
  }

  private view(r: Download): DownloadView {
    const job = this.jobs.get(r.distro);
    const live = job?.id === r.id && isActiveDownload(r.state) ? job.live : null;
    return { ...r, bytes: live ? live.bytes : r.bytes, totalBytes: live?.total ?? r.totalBytes, bytesPerSecond: live?.rate ?? null };
  }

  private emit(type: EventType, d: Download, data: Record<string, unknown>): void {
    this.d.events.publish({ type, data: { downloadId: d.id, distro: d.distro, ...data } });
  }
}

/** A download that ended without its image, as the error of whoever was waiting for it. */
function endedError(d: Download): DomainError {
  const err = d.error ?? { code: 'DOWNLOAD_FAILED' as const, reason: `the image of '${d.distro}' is not there` };
  return new DomainError(err.code, `download of '${d.distro}' ${d.state}: ${err.reason}`, { distro: d.distro, download: d.id });
}

const notCancellable = (d: Download, what: string): DomainError => new DomainError('INVALID_STATE',
  `download '${d.id}' ${what}${d.state === 'completed' ? `; remove the image with DELETE /api/v1/images/${d.distro}` : ''}`, { state: d.state });

const cancelled = (): DownloadFailure => ({ code: 'DOWNLOAD_CANCELLED', reason: 'cancelled by a caller' });

function failureOf(e: unknown): DownloadFailure {
  if (e instanceof TransferFailure || e instanceof DomainError) return { code: e.code, reason: e.message };
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return { code: 'INSUFFICIENT_STORAGE', reason: `the disk holding the images folder is full (${code})` };
  if (code === 'SQLITE_FULL') return { code: 'INSUFFICIENT_STORAGE', reason: 'the disk holding the database is full (SQLITE_FULL)' };
  return { code: 'DOWNLOAD_FAILED', reason: errorMessage(e) };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal });
}
