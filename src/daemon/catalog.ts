import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CatalogError, validateCatalog, type Catalog } from '../domain/distro.js';
import type { HttpFetcher } from '../ports/downloads.js';
import { errorMessage } from '../util/errors.js';

/** The catalog shipped with Grove, at the package root (as package.json is found). */
export const SHIPPED_CATALOG = fileURLToPath(new URL('../../../catalog/distros.json', import.meta.url));

const CATALOG_MAX_BYTES = 1024 * 1024;

/**
 * Reads and checks the catalog: the shipped file, or what GROVE_CATALOG / --catalog names (a path, or an
 * http(s) URL a mirror or a test server serves). Any problem is a CatalogError saying where and what.
 */
export async function loadCatalog(source: string | null, fetcher: HttpFetcher): Promise<{ catalog: Catalog; source: string }> {
  const from = source ?? SHIPPED_CATALOG;
  const text = /^https?:\/\//i.test(from) ? await fetchCatalog(from, fetcher) : await readCatalog(from);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CatalogError(`catalog ${from} is not valid JSON: ${errorMessage(e)}`);
  }
  try {
    return { catalog: validateCatalog(doc), source: from };
  } catch (e) {
    throw new CatalogError(`catalog ${from}: ${errorMessage(e)}`);
  }
}

/** Checked before it is opened: read whole, /dev/zero would never end, and opening a FIFO blocks start-up. */
async function readCatalog(path: string): Promise<string> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new CatalogError(`the catalog ${path} is not a regular file`);
    if (st.size > CATALOG_MAX_BYTES) throw new CatalogError(`the catalog ${path} is larger than ${CATALOG_MAX_BYTES} bytes`);
    return await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof CatalogError) throw e;
    throw new CatalogError(`cannot read the catalog ${path}: ${errorMessage(e)}`);
  }
}

async function fetchCatalog(url: string, fetcher: HttpFetcher): Promise<string> {
  const signal = AbortSignal.timeout(30_000);
  try {
    const res = await fetcher.get(url, { signal });
    if (res.head.status !== 200) {
      res.discard();
      throw new CatalogError(`cannot fetch the catalog ${url}: HTTP ${res.head.status} ${res.head.statusText}`.trim());
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += c.length;
      if (n > CATALOG_MAX_BYTES) { res.discard(); throw new CatalogError(`the catalog ${url} is larger than ${CATALOG_MAX_BYTES} bytes`); }
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if (e instanceof CatalogError) throw e;
    throw new CatalogError(`cannot fetch the catalog ${url}: ${errorMessage(e)}`);
  }
}
