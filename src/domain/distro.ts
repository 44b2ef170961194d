/**
 * The distro catalog: which cloud images Grove can fetch, and where each one's checksum comes from.
 * Pure: the daemon reads the JSON (shipped file, GROVE_CATALOG path or URL) and hands it here.
 */

export const IMAGE_FORMATS = ['qcow2', 'raw'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A catalog entry as written in the JSON file (SPEC §5). */
export interface Distro {
  id: string;
  name: string;
  version: string;
  arch: string;
  format: ImageFormat;
  url: string;
  sha256?: string;
  sha512?: string;
  checksumUrl?: string;
}

/** Where the digest an image is verified against comes from: pinned in the catalog, or a published sums file. */
export type ChecksumSource =
  | { kind: 'pinned'; algorithm: DigestAlgorithm; digest: string }
  | { kind: 'sums'; url: string };

export interface Catalog {
  distros: Distro[];
}

export const DISTRO_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** What an image's local file name may be: it is placed under images/ as is. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,199}$/;
const HEX = { sha256: /^[0-9a-f]{64}$/i, sha512: /^[0-9a-f]{128}$/i };
/**
 * Catalog texts end up on terminals (`grove images`) and in logs as they are: an escape sequence in a
 * name could rewrite the screen, a bidi override make one name read as another.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const FIELDS = ['id', 'name', 'version', 'arch', 'format', 'url', 'sha256', 'sha512', 'checksumUrl'] as const;

/** A catalog that cannot be used; the message names the entry and the field at fault. */
export class CatalogError extends Error {
  override readonly name = 'CatalogError';
}

export function checksumSource(d: Distro): ChecksumSource {
  if (d.sha512 !== undefined) return { kind: 'pinned', algorithm: 'sha512', digest: d.sha512.toLowerCase() };
  if (d.sha256 !== undefined) return { kind: 'pinned', algorithm: 'sha256', digest: d.sha256.toLowerCase() };
  return { kind: 'sums', url: d.checksumUrl! };
}

/** The file name an image is stored under: the last segment of its URL's path. */
export function imageFileName(url: string): string {
  const last = new URL(url).pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * Checks a parsed catalog document and returns it typed. Everything is refused that Grove would later
 * trip over: unknown fields, duplicate ids or file names, a URL that is not http(s), no checksum source,
 * or more than one (which one would win is not obvious to the person writing the file).
 */
export function validateCatalog(doc: unknown): Catalog {
  if (!isObject(doc)) throw new CatalogError('the catalog must be a JSON object with a "distros" array');
  const extra = Object.keys(doc).filter((k) => k !== 'distros');
  if (extra.length > 0) throw new CatalogError(`unknown top-level field ${quote(extra[0]!)} (only "distros" is allowed)`);
  const list = doc['distros'];
  if (!Array.isArray(list)) throw new CatalogError('"distros" must be an array');
  const ids = new Map<string, number>();
  const files = new Map<string, string>();
  const distros = list.map((entry: unknown, i): Distro => {
    const d = checkEntry(entry, i);
    const where = `distros[${i}] (${quote(d.id)})`;
    if (ids.has(d.id)) throw new CatalogError(`${where}.id: duplicate of distros[${ids.get(d.id)}]`);
    ids.set(d.id, i);
    const file = imageFileName(d.url);
    const other = files.get(file);
    if (other !== undefined) throw new CatalogError(`${where}.url: file name ${quote(file)} is also used by ${quote(other)}; each image needs its own file name`);
    files.set(file, d.id);
    return d;
  });
  return { distros };
}

function checkEntry(entry: unknown, i: number): Distro {
  if (!isObject(entry)) throw new CatalogError(`distros[${i}]: must be an object`);
  const idText = typeof entry['id'] === 'string' ? entry['id'] : undefined;
  const where = `distros[${i}]${idText !== undefined ? ` (${quote(idText)})` : ''}`;
  const fail = (field: string, why: string): never => { throw new CatalogError(`${where}.${field}: ${why}`); };
  for (const k of Object.keys(entry)) {
    if (!(FIELDS as readonly string[]).includes(k)) fail(k, `unknown field (allowed: ${FIELDS.join(', ')})`);
  }
  const text = (field: string, max: number): string => {
    const v = entry[field];
    if (typeof v !== 'string' || v.trim() === '') return fail(field, 'required, a non-empty string');
    if (v.length > max) fail(field, `longer than ${max} characters`);
    if (CONTROL.test(v)) fail(field, 'holds a control character (or a bidi override)');
    return v;
  };
  const id = text('id', 63);
  if (!DISTRO_ID.test(id)) fail('id', 'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit');
  const name = text('name', 128);
  const version = text('version', 64);
  const arch = text('arch', 32);
  if (!/^[a-z0-9_]+$/.test(arch)) fail('arch', `${quote(arch)} is not an architecture name (e.g. x86_64)`);
  const format = text('format', 16);
  if (!(IMAGE_FORMATS as readonly string[]).includes(format)) fail('format', `must be ${IMAGE_FORMATS.join(' or ')} (got ${quote(format)})`);
  const url = httpUrl(text('url', 2048), (why) => fail('url', why));
  const file = imageFileName(url);
  if (!FILE_NAME.test(file) || file.endsWith('.part')) fail('url', `its file name ${quote(file)} is not usable as a local file name`);

  const d: Distro = { id, name, version, arch, format: format as ImageFormat, url };
  let sources = 0;
  for (const alg of ['sha256', 'sha512'] as const) {
    if (entry[alg] === undefined) continue;
    sources++;
    const v = entry[alg];
    if (typeof v !== 'string' || !HEX[alg].test(v)) fail(alg, `must be ${alg === 'sha256' ? 64 : 128} hex digits`);
    d[alg] = (v as string).toLowerCase();
  }
  if (entry['checksumUrl'] !== undefined) {
    sources++;
    d.checksumUrl = httpUrl(text('checksumUrl', 2048), (why) => fail('checksumUrl', why));
  }
  if (sources === 0) fail('checksumUrl', 'no checksum source: give checksumUrl (a SHA256SUMS/SHA512SUMS/CHECKSUM file) or a pinned sha256 or sha512');
  if (sources > 1) fail('checksumUrl', 'give exactly one checksum source: checksumUrl, sha256 or sha512');
  return d;
}

function httpUrl(text: string, fail: (why: string) => never): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return fail(`${quote(text.slice(0, 200))} is not an absolute URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`must be http or https (got ${quote(u.protocol.slice(0, -1))})`);
  if (u.username !== '' || u.password !== '') fail('must not carry credentials');
  return u.href;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
