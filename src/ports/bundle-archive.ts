import type { Readable } from 'node:stream';

export interface ArchiveFile {
  name: string;
  size: number;
  /** Either a file to stream from, or the bytes themselves. */
  path?: string;
  data?: Buffer;
}

export interface ArchiveEntry {
  name: string;
  /** 'file' for regular files; anything else is reported so the caller can refuse it. */
  type: string;
  size: number;
  stream: Readable;
}

export interface BundleArchive {
  /** A tar stream of the files in order, gzip-compressed when asked. */
  pack(files: ArchiveFile[], gzip: boolean): Readable;
  /** Entries of a tar (or gzip'd tar, detected from its first bytes); each stream must be consumed. */
  entries(input: Readable): AsyncIterable<ArchiveEntry>;
}
