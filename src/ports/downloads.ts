import type { Download, LocalImage } from '../domain/download.js';

/** What an HTTP server answered, read from the status line and headers. */
export interface HttpHead {
  status: number;
  statusText: string;
  /** Content-Length of this response's body, when given. */
  contentLength: number | null;
  /** A 206's `Content-Range: bytes start-end/total` (total null for `*`). */
  contentRange: { start: number; end: number; total: number | null } | null;
  /** A 416's `Content-Range: bytes *\/total`: the size the server has. */
  unsatisfiedTotal: number | null;
  /** A strong ETag, else Last-Modified: what If-Range may carry on a later resume. */
  validator: string | null;
}

export interface HttpResponse {
  head: HttpHead;
  /** The body as it arrives; an error thrown while iterating is a dropped connection. */
  body: AsyncIterable<Buffer>;
  /** Lets go of a response whose body is not wanted. */
  discard(): void;
}

export interface GetOptions {
  /** Ask for the bytes from this offset on (`Range: bytes=N-`); 0 or absent: the whole file. */
  from?: number;
  /** Sent as If-Range with a range request: a server whose file changed answers 200 with all of it. */
  ifRange?: string | null;
  signal: AbortSignal;
}

/**
 * A request that asking again cannot mend (a redirect loop, a redirect to another scheme): the download
 * fails at once instead of spending its retries. Drops, resets and timeouts are plain errors (retried).
 */
export class HttpRefused extends Error {
  override readonly name = 'HttpRefused';
}

/** HTTP GET as the download manager needs it (node:http in production, a fake in unit tests). */
export interface HttpFetcher {
  get(url: string, opts: GetOptions): Promise<HttpResponse>;
}

export interface PartWriter {
  /** Appends the chunks in order; resolves once the file holds them. */
  write(chunks: Buffer[]): Promise<void>;
  close(): Promise<void>;
}

/** File operations on images/ (partial downloads, verified images). */
export interface ImageFiles {
  /** Size of a file, or null when there is none. */
  size(path: string): Promise<number | null>;
  /** Reads a whole file in order through `onChunk`; returns its size. */
  read(path: string, onChunk: (chunk: Buffer) => void): Promise<number>;
  /** Opens a partial file for writing at its end, or emptied first. */
  openPart(path: string, mode: 'append' | 'truncate'): Promise<PartWriter>;
  /** Flushes a complete file to the disk and renames it to its final name, atomically. */
  promote(from: string, to: string): Promise<void>;
  /** Deletes a file; a missing one is fine. */
  remove(path: string): Promise<void>;
  /** Bytes an unprivileged writer may still use on the filesystem holding `path`'s folder. */
  freeBytes(path: string): Promise<number>;
}

export interface DownloadRepo {
  insert(d: Download): void;
  update(d: Download): void;
  get(id: string): Download | undefined;
  /** Newest first. */
  list(limit: number): Download[];
  /** Queued and running downloads, oldest first (what a restart resumes). */
  unfinished(): Download[];
  /** Deletes finished downloads beyond the newest `keep`. */
  prune(keep: number): number;
}

export interface ImageRepo {
  list(): LocalImage[];
  get(distro: string): LocalImage | undefined;
  put(img: LocalImage): void;
  delete(distro: string): void;
}
