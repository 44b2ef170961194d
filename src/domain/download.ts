import type { DigestAlgorithm, ImageFormat } from './distro.js';
import type { ErrorCode } from './errors.js';

/**
 * queued: waiting for a transfer slot; running: transferring (or resolving its checksum); completed: the
 * image is verified and in images/; failed: ended with a reason and a code; cancelled: stopped by a caller.
 */
export const DOWNLOAD_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type DownloadState = (typeof DOWNLOAD_STATES)[number];

export const isActiveDownload = (s: DownloadState): boolean => s === 'queued' || s === 'running';

export interface DownloadFailure {
  code: ErrorCode;
  reason: string;
}

/** A download as stored (times are ISO strings). */
export interface Download {
  id: string;
  distro: string;
  url: string;
  /** The image's file name under images/ (its partial copy is `<file>.part`). */
  file: string;
  state: DownloadState;
  /** Bytes of the image received so far (all of it once completed). */
  bytes: number;
  totalBytes: number | null;
  /** Connections that dropped (or answered 5xx) and were retried during this download. */
  retries: number;
  /** Times the transfer started over from byte 0 (a server ignoring Range, or a changed file). */
  restarts: number;
  algorithm: DigestAlgorithm | null;
  /** The digest the image must have, once known. */
  expectedDigest: string | null;
  /** ETag or Last-Modified of the image, sent as If-Range when resuming so a changed file is not spliced. */
  validator: string | null;
  error: DownloadFailure | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A verified image Grove downloaded, kept in images/. */
export interface LocalImage {
  distro: string;
  file: string;
  path: string;
  format: ImageFormat;
  bytes: number;
  algorithm: DigestAlgorithm;
  digest: string;
  url: string;
  downloadedAt: string;
  /** The completed download that brought it (kept in the download list while the image is here). */
  downloadId: string | null;
}

export interface RetryPolicy {
  /** Retries allowed per run (a dropped connection, a reset, a 5xx answer). */
  maxRetries: number;
  /** First delay; it doubles per retry that followed no progress, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 10, baseDelayMs: 500, maxDelayMs: 15_000 };

/** Delay before the next attempt, `stalled` being how many attempts in a row brought no new byte. */
export function retryDelayMs(p: RetryPolicy, stalled: number): number {
  return Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.max(0, stalled - 1));
}

/** HTTP answers worth trying again (the server or a proxy may recover); anything else 4xx is final. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
