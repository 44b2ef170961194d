import { createReadStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type * as TarStream from 'tar-stream';
import type { ArchiveEntry, ArchiveFile, BundleArchive } from '../ports/bundle-archive.js';
import { errorMessage } from '../util/errors.js';
import { loadOnFirstUse } from '../util/load-on-first-use.js';

const tar = loadOnFirstUse<typeof TarStream>('tar-stream');

export class TarArchive implements BundleArchive {
  pack(files: ArchiveFile[], gzip: boolean): Readable {
    const pack = tar().pack();
    const write = async (): Promise<void> => {
      for (const f of files) {
        const header = { name: f.name, size: f.size, mode: 0o600, mtime: new Date(), type: 'file' as const };
        if (f.data) {
          const data = f.data;
          await new Promise<void>((resolve, reject) => pack.entry(header, data, (e) => (e ? reject(e) : resolve())));
        } else {
          await new Promise<void>((resolve, reject) => {
            const sink = pack.entry(header, (e) => (e ? reject(e) : resolve()));
            // The reader may stop reading (its disk full, the client gone): the entry then fails, and with
            // no listener its error would end the daemon.
            const file = createReadStream(f.path!);
            sink.on('error', (e: Error) => { file.destroy(); reject(e); });
            file.on('error', reject).pipe(sink as unknown as NodeJS.WritableStream);
          });
        }
      }
      pack.finalize();
    };
    // A failed file fails the stream the caller reads.
    write().catch((e: unknown) => pack.destroy(e instanceof Error ? e : new Error(errorMessage(e))));
    // tar-stream speaks streamx; Readable.from turns it into a Node stream with backpressure.
    const out = Readable.from(pack);
    if (!gzip) return out;
    const gz = createGzip({ level: 6 });
    out.on('error', (e) => gz.destroy(e));
    return out.pipe(gz);
  }

  async *entries(input: Readable): AsyncIterable<ArchiveEntry> {
    const source = await sniffGzip(input);
    const extract = tar().extract();
    source.on('error', (e) => extract.destroy(e));
    source.pipe(extract as unknown as NodeJS.WritableStream);
    try {
      for await (const entry of extract) {
        yield { name: entry.header.name, type: entry.header.type ?? 'file', size: entry.header.size ?? 0, stream: Readable.from(entry) };
      }
    } finally {
      // Stopped early (a refused entry): drop the rest of the input, so an HTTP upload is read to its
      // end and its keep-alive connection stays usable instead of stalling on a half-read body.
      extract.destroy();
      input.unpipe();
      input.resume();
    }
  }
}

/** gzip is recognised by its magic bytes, whatever the caller's content type said. */
async function sniffGzip(input: Readable): Promise<Readable> {
  const first = await new Promise<Buffer | null>((resolve, reject) => {
    const onReadable = (): void => { cleanup(); resolve(input.read() as Buffer | null); };
    const onEnd = (): void => { cleanup(); resolve(null); };
    const onError = (e: Error): void => { cleanup(); reject(e); };
    const cleanup = (): void => { input.off('readable', onReadable); input.off('end', onEnd); input.off('error', onError); };
    input.once('readable', onReadable).once('end', onEnd).once('error', onError);
  });
  const rest = new PassThrough();
  if (first === null) {
    rest.end();
    return rest;
  }
  rest.write(first);
  input.pipe(rest);
  if (first && first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
    const gunzip = createGunzip();
    rest.on('error', (e) => gunzip.destroy(e));
    return rest.pipe(gunzip);
  }
  return rest;
}
