import type { Readable } from 'node:stream';

/** Plain files on the host that callers name (inside `<data>/transfer`, checked by the app before). */
export interface HostFiles {
  read(path: string): Readable;
  /**
   * Creates `path`, which must not exist yet (mode 0600), from the bytes given; a failure midway removes
   * it again. Resolves with the number of bytes written.
   */
  create(path: string, data: AsyncIterable<Buffer>): Promise<number>;
}
