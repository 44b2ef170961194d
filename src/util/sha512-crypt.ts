import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS = 5000;

/** The order SHA-crypt writes the digest's bytes in, three at a time (Drepper's specification). */
const ORDER: [number, number, number][] = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10],
  [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];

/**
 * glibc's `$6$` password hash (SHA-512 crypt, default 5000 rounds), the form /etc/shadow and cloud-init's
 * `passwd` take: a VM's password is kept and written to its seed only as this hash.
 */
export function sha512Crypt(password: string, salt = randomSalt()): string {
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 16), 'utf8');
  const sha = (...parts: Buffer[]): Buffer => { const h = createHash('sha512'); for (const x of parts) h.update(x); return h.digest(); };

  const b = sha(p, s, p);
  const a = createHash('sha512').update(p).update(s);
  let n = p.length;
  for (; n > 64; n -= 64) a.update(b);
  a.update(b.subarray(0, n));
  for (let len = p.length; len > 0; len >>= 1) a.update(len & 1 ? b : p);
  let digest = a.digest();

  const dp = sha(...Array<Buffer>(p.length).fill(p));
  const pSeq = repeat(dp, p.length);
  const ds = sha(...Array<Buffer>(16 + digest[0]!).fill(s));
  const sSeq = repeat(ds, s.length);

  for (let i = 0; i < ROUNDS; i++) {
    const c = createHash('sha512');
    c.update(i & 1 ? pSeq : digest);
    if (i % 3 !== 0) c.update(sSeq);
    if (i % 7 !== 0) c.update(pSeq);
    c.update(i & 1 ? digest : pSeq);
    digest = c.digest();
  }

  let out = '';
  const put = (w: number, chars: number): void => {
    for (let k = 0; k < chars; k++) { out += ALPHABET[w & 0x3f]; w >>= 6; }
  };
  for (const [x, y, z] of ORDER) put((digest[x]! << 16) | (digest[y]! << 8) | digest[z]!, 4);
  put(digest[63]!, 2);
  return `$6$${s.toString('utf8')}$${out}`;
}

function repeat(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

function randomSalt(): string {
  return [...randomBytes(16)].map((x) => ALPHABET[x & 0x3f]).join('');
}
