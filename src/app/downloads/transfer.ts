import { createHash, type Hash } from 'node:crypto';
import type { ExpectedDigest } from '../../domain/checksums.js';
import { isRetryableStatus, retryDelayMs, type RetryPolicy } from '../../domain/download.js';
import type { ErrorCode } from '../../domain/errors.js';
import { HttpRefused, type HttpFetcher, type HttpResponse, type ImageFiles, type PartWriter } from '../../ports/downloads.js';
import { errorMessage } from '../../util/errors.js';

/** Writes go out in batches this large: fewer system calls, and one write overlaps the next batch arriving. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** Why a transfer ended without a verified file; `keepPart` says whether its partial file is worth resuming. */
export class TransferFailure extends Error {
  override readonly name = 'TransferFailure';
  constructor(readonly code: ErrorCode, message: string, readonly keepPart: boolean) {
    super(message);
  }
}

export interface TransferJob {
  url: string;
  /** The partial file: resumed from when it exists (rehashed first), renamed by the caller once verified. */
  part: string;
  expected: ExpectedDigest;
  /** ETag/Last-Modified seen when the partial file was begun (If-Range on resume). */
  validator: string | null;
  signal: AbortSignal;
}

export interface TransferDeps {
  fetcher: HttpFetcher;
  files: ImageFiles;
  retry: RetryPolicy;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface TransferHooks {
  /** Bytes of the image held so far (partial file + what just arrived) and its size when known. Called per chunk. */
  progress(bytes: number, total: number | null): void;
  retrying(info: { error: string; retries: number; delayMs: number; bytes: number }): void;
  /** The transfer starts over from byte 0; what was there is discarded, never appended to. */
  restarting(reason: string): void;
  validator(v: string | null): void;
}

class BodyDropped extends Error {
  constructor(readonly written: number, cause: unknown) {
    super(errorMessage(cause));
  }
}

/**
 * Fetches `job.url` into `job.part`, hashing every byte as it is written, and checks the digest at the end.
 * A dropped connection is resumed with `Range: bytes=<size of the partial file>-` (bounded retries with
 * backoff); a server that answers such a request with 200 (it ignores Range, or If-Range says the file
 * changed) gets a fresh start from byte 0 — the partial file is truncated, never appended to. Resolves with
 * the verified size; the caller renames the file into place.
 */
export async function transfer(job: TransferJob, d: TransferDeps, on: TransferHooks): Promise<{ bytes: number }> {
  const { signal } = job;
  let hash: Hash = createHash(job.expected.algorithm);
  // A partial file from an earlier attempt or run: its bytes are hashed again, so the digest at the end
  // covers the whole file and not only what this run received.
  let offset = (await d.files.size(job.part)) === null ? 0 : await d.files.read(job.part, (c) => hash.update(c));
  let total: number | null = null;
  let validator = job.validator;
  let retries = 0;
  let stalled = 0;
  on.progress(offset, null);

  const restart = (reason: string): void => {
    on.restarting(reason);
    hash = createHash(job.expected.algorithm);
    offset = 0;
    on.progress(0, null);
  };
  // An answer that makes us start over without bringing any byte costs a retry: a server that keeps
  // answering so would otherwise be asked again and again, without end.
  const startOver = async (why: string): Promise<void> => {
    restart(`${why}: starting over from byte 0`);
    await retry(why);
  };
  const retry = async (error: string): Promise<void> => {
    if (retries >= d.retry.maxRetries) {
      throw new TransferFailure('DOWNLOAD_FAILED', `gave up after ${retries} retries: ${error}`, true);
    }
    retries++;
    stalled++;
    const delayMs = retryDelayMs(d.retry, stalled);
    on.retrying({ error, retries, delayMs, bytes: offset });
    await d.sleep(delayMs, signal);
  };

  for (;;) {
    signal.throwIfAborted();
    let res: HttpResponse;
    try {
      res = await d.fetcher.get(job.url, { from: offset, ifRange: offset > 0 ? validator : null, signal });
    } catch (e) {
      signal.throwIfAborted();
      if (e instanceof HttpRefused) throw new TransferFailure('DOWNLOAD_FAILED', `cannot fetch ${job.url}: ${e.message}`, true);
      await retry(`cannot reach ${job.url}: ${errorMessage(e)}`);
      continue;
    }
    const h = res.head;
    let mode: 'append' | 'truncate';
    if (h.status === 206 && h.contentRange?.start === offset) {
      // From byte 0 it is the whole file, however oddly labelled.
      mode = offset > 0 ? 'append' : 'truncate';
      total = h.contentRange.total;
    } else if (h.status === 200) {
      if (offset > 0) restart(`the server answered a request for bytes ${offset}- with the whole file (HTTP 200): starting over from byte 0`);
      mode = 'truncate';
      total = h.contentLength;
      if (h.validator !== validator) { validator = h.validator; on.validator(validator); }
    } else if (h.status === 416 && offset > 0) {
      res.discard();
      // The partial file already holds every byte (a crash after the last write, before the rename).
      if (h.unsatisfiedTotal === offset) { total = offset; break; }
      await startOver(`the server has ${h.unsatisfiedTotal ?? 'an unknown number of'} bytes, fewer than the ${offset} already here`);
      continue;
    } else if (h.status === 206) {
      res.discard();
      await startOver(`the server answered with a different range (${h.contentRange ? `${h.contentRange.start}-${h.contentRange.end}` : 'none'}) than asked (${offset}-)`);
      continue;
    } else if (isRetryableStatus(h.status)) {
      res.discard();
      await retry(`${job.url} answered HTTP ${h.status}${h.statusText ? ` ${h.statusText}` : ''}`);
      continue;
    } else {
      res.discard();
      throw new TransferFailure('DOWNLOAD_FAILED', `${job.url} answered HTTP ${h.status}${h.statusText ? ` ${h.statusText}` : ''}`, true);
    }

    on.progress(offset, total);
    const needed = total !== null ? total - offset : null;
    if (needed !== null) {
      // Checked up front: the disk holding images/ often holds the VMs' disks too, and filling it to the
      // last byte would stop their writes before the download learns of it. Starting over frees what the
      // partial file holds.
      const free = await d.files.freeBytes(job.part) + (mode === 'truncate' ? (await d.files.size(job.part)) ?? 0 : 0);
      if (needed > free) {
        res.discard();
        throw new TransferFailure('INSUFFICIENT_STORAGE',
          `the image needs ${needed} more bytes and the disk holding the images folder has ${free} free; free some space and pull again`, true);
      }
    }
    const before = offset;
    let dropped: string | null = null;
    const writer = await openPart(d.files, job.part, mode);
    try {
      offset = await receive(res.body, writer, hash, offset, (n) => on.progress(n, total));
    } catch (e) {
      if (!(e instanceof BodyDropped)) throw e;
      offset = e.written;
      dropped = e.message;
    } finally {
      await writer.close().catch(() => undefined);
    }
    signal.throwIfAborted();
    if (offset > before) stalled = 0;
    if (dropped === null && (total === null || offset === total)) break;
    if (total !== null && offset > total) {
      throw new TransferFailure('DOWNLOAD_FAILED', `the server sent ${offset} bytes of a file it announced as ${total}`, false);
    }
    await retry(dropped !== null
      ? `the connection dropped after ${offset}${total !== null ? ` of ${total}` : ''} bytes (${dropped})`
      : `the server ended the response after ${offset} of ${total} bytes`);
  }

  const digest = hash.digest('hex');
  if (digest !== job.expected.digest) {
    throw new TransferFailure('CHECKSUM_MISMATCH',
      `the ${job.expected.algorithm.toUpperCase()} of the downloaded file is ${digest}, but the checksum source says ${job.expected.digest}; the file was discarded`, false);
  }
  return { bytes: offset };
}

async function openPart(files: ImageFiles, part: string, mode: 'append' | 'truncate'): Promise<PartWriter> {
  try {
    return await files.openPart(part, mode);
  } catch (e) {
    throw writeFailure(part, e);
  }
}

/**
 * Streams a body into the partial file and the hash. What arrived before a drop is written too (it is valid
 * data of the range asked for), so the file and the hash always cover the same bytes. Resolves with the
 * file's new size; a drop is a BodyDropped carrying that size, a write error a TransferFailure.
 */
async function receive(body: AsyncIterable<Buffer>, writer: PartWriter, hash: Hash, start: number, progress: (bytes: number) => void): Promise<number> {
  let received = start;
  let written = start;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  // Typed by a cast: flush() (a closure) assigns it, which TS's narrowing of a plain `= null` would miss.
  let inFlight = null as Promise<void> | null;
  let writeError: unknown = null;
  const flush = async (): Promise<void> => {
    if (inFlight) await inFlight;
    inFlight = null;
    if (writeError !== null || batchBytes === 0) return;
    const chunks = batch;
    const n = batchBytes;
    batch = [];
    batchBytes = 0;
    inFlight = writer.write(chunks).then(() => { written += n; }, (e: unknown) => { writeError = e; });
  };
  let dropped: unknown = null;
  try {
    for await (const chunk of body) {
      hash.update(chunk);
      batch.push(chunk);
      batchBytes += chunk.length;
      received += chunk.length;
      progress(received);
      if (batchBytes >= WRITE_BATCH_BYTES) {
        await flush();
        if (writeError !== null) break;
      }
    }
  } catch (e) {
    dropped = e;
  }
  await flush();
  if (inFlight) await inFlight;
  if (writeError !== null) throw writeFailure('the partial file', writeError);
  if (dropped !== null) throw new BodyDropped(written, dropped);
  return written;
}

function writeFailure(what: string, e: unknown): TransferFailure {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new TransferFailure('INSUFFICIENT_STORAGE', `the disk holding the images folder is full (${code}); free some space and pull again`, false);
  }
  return new TransferFailure('DOWNLOAD_FAILED', `cannot write ${what}: ${errorMessage(e)}`, false);
}
