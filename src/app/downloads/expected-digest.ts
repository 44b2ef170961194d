import { findDigest, type ExpectedDigest } from '../../domain/checksums.js';
import { checksumSource, imageFileName, type Distro } from '../../domain/distro.js';
import { isRetryableStatus, retryDelayMs, type RetryPolicy } from '../../domain/download.js';
import { HttpRefused, type HttpFetcher } from '../../ports/downloads.js';
import { errorMessage } from '../../util/errors.js';
import { TransferFailure } from './transfer.js';

/** Sums files are small (Rocky's whole-folder CHECKSUM is a few KiB); anything far larger is not one. */
const SUMS_MAX_BYTES = 4 * 1024 * 1024;

export interface DigestDeps {
  fetcher: HttpFetcher;
  retry: RetryPolicy;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  signal: AbortSignal;
}

/**
 * The digest an image must have: pinned in the catalog, or its entry in the published sums file. Read
 * before the image is fetched, so nothing is downloaded that could not be verified (CHECKSUM_UNAVAILABLE).
 */
export async function expectedDigest(distro: Distro, d: DigestDeps): Promise<ExpectedDigest> {
  const src = checksumSource(distro);
  if (src.kind === 'pinned') return { algorithm: src.algorithm, digest: src.digest };
  const text = await fetchText(src.url, d);
  const found = findDigest(text, imageFileName(distro.url));
  if (!found.ok) throw new TransferFailure('CHECKSUM_UNAVAILABLE', `${found.reason} (${src.url})`, true);
  return { algorithm: found.algorithm, digest: found.digest };
}

/** A sums file, with the same retries as the image itself for drops and 5xx answers. */
async function fetchText(url: string, d: DigestDeps): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    let error: string;
    try {
      const res = await d.fetcher.get(url, { signal: d.signal });
      if (res.head.status === 200) {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of res.body) {
          n += c.length;
          if (n > SUMS_MAX_BYTES) {
            res.discard();
            throw new TransferFailure('CHECKSUM_UNAVAILABLE', `the checksum file ${url} is larger than ${SUMS_MAX_BYTES} bytes: not a sums file`, true);
          }
          chunks.push(c);
        }
        return Buffer.concat(chunks).toString('utf8');
      }
      res.discard();
      error = `the checksum file ${url} answered HTTP ${res.head.status}${res.head.statusText ? ` ${res.head.statusText}` : ''}`;
      if (!isRetryableStatus(res.head.status)) throw new TransferFailure('CHECKSUM_UNAVAILABLE', error, true);
    } catch (e) {
      if (e instanceof TransferFailure) throw e;
      d.signal.throwIfAborted();
      error = `cannot fetch the checksum file ${url}: ${errorMessage(e)}`;
      if (e instanceof HttpRefused) throw new TransferFailure('CHECKSUM_UNAVAILABLE', error, true);
    }
    if (attempt > d.retry.maxRetries) throw new TransferFailure('CHECKSUM_UNAVAILABLE', `gave up after ${attempt - 1} retries: ${error}`, true);
    await d.sleep(retryDelayMs(d.retry, attempt), d.signal);
  }
}
