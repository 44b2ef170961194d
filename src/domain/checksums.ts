import type { DigestAlgorithm } from './distro.js';

/** The digest an image must have. */
export interface ExpectedDigest {
  algorithm: DigestAlgorithm;
  digest: string;
}

export type SumsLookup = ({ ok: true } & ExpectedDigest) | { ok: false; reason: string };

/** The algorithm follows from the digest's length (SPEC §5): 64 hex digits SHA-256, 128 SHA-512. */
export function algorithmOf(hex: string): DigestAlgorithm | undefined {
  if (!/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  return hex.length === 64 ? 'sha256' : hex.length === 128 ? 'sha512' : undefined;
}

const GNU = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128}) [ *](.+)$/;
const BSD = /^(SHA-?256|SHA-?512) ?\((.+)\) ?= ?([0-9a-fA-F]+)$/i;
const BARE = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/;

/** `./x`, `*x` and `dir/x` all name `x`. */
function baseName(name: string): string {
  return name.replace(/^\*/, '').split('/').pop() ?? name;
}

/**
 * Finds `fileName`'s digest in a published sums file: GNU lines (`hex  name`, `hex *name`, as sha256sum
 * writes them: Debian, Ubuntu, AlmaLinux), BSD lines (`SHA256 (name) = hex`: Fedora, Rocky), or a file
 * holding one bare digest (a per-image `.sha512`). Comments, blank lines and a PGP clear-signature around
 * the list (Fedora) are skipped. When the file lists both SHA-256 and SHA-512 for the image, SHA-512 wins;
 * two different digests of one algorithm for the same name are a refusal, not a guess.
 */
export function findDigest(text: string, fileName: string): SumsLookup {
  const found = new Map<DigestAlgorithm, Set<string>>();
  const bare: string[] = [];
  let entries = 0;
  let inSignature = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '-----BEGIN PGP SIGNATURE-----') { inSignature = true; continue; }
    if (line === '-----END PGP SIGNATURE-----') { inSignature = false; continue; }
    if (inSignature || line === '' || line.startsWith('#')) continue;
    let name: string | undefined;
    let digest: string | undefined;
    const gnu = GNU.exec(line);
    const bsd = gnu ? null : BSD.exec(line);
    if (gnu) {
      [digest, name] = [gnu[1], gnu[2]];
    } else if (bsd) {
      const tagged: DigestAlgorithm = bsd[1]!.replace('-', '').toLowerCase() === 'sha256' ? 'sha256' : 'sha512';
      // A tag that disagrees with the digest's length is a damaged line: not evidence for anything.
      if (algorithmOf(bsd[3]!) !== tagged) continue;
      [name, digest] = [bsd[2], bsd[3]];
    } else if (BARE.test(line)) {
      bare.push(line.toLowerCase());
      continue;
    } else {
      continue;
    }
    entries++;
    if (baseName(name!) !== fileName) continue;
    const alg = algorithmOf(digest!)!;
    const set = found.get(alg) ?? new Set<string>();
    set.add(digest!.toLowerCase());
    found.set(alg, set);
  }
  if (found.size === 0 && entries === 0 && bare.length === 1) {
    return { ok: true, algorithm: algorithmOf(bare[0]!)!, digest: bare[0]! };
  }
  for (const alg of ['sha512', 'sha256'] as const) {
    const set = found.get(alg);
    if (!set) continue;
    if (set.size > 1) return { ok: false, reason: `the checksum file lists ${set.size} different ${alg.toUpperCase()} digests for ${fileName}` };
    return { ok: true, algorithm: alg, digest: [...set][0]! };
  }
  return {
    ok: false,
    reason: entries === 0 && bare.length === 0
      ? 'the checksum file holds no checksum lines (expected "hex  name" or "SHA256 (name) = hex")'
      : `the checksum file has no entry for ${fileName}`,
  };
}
