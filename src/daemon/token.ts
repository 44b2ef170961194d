import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';

export interface TokenSource {
  token: string;
  /** Where it came from, for the start-up message; never the token itself. */
  origin: string;
  created: boolean;
}

export const TOKEN_MIN_LENGTH = 16;

/**
 * Why a token cannot be used, or null. A client sends it as `Authorization: Bearer <token>`, one header
 * word of visible ASCII: a token with a space, a tab or a non-ASCII letter inside could never be matched,
 * so the daemon refuses to start with it instead of answering 401 to everyone. Surrounding whitespace (a
 * file's final newline) is trimmed before this check.
 */
export function tokenProblem(token: string): string | null {
  if (/\s/.test(token)) return 'contains whitespace (a client sends the token as one word of an Authorization header)';
  if (!/^[\x21-\x7e]*$/.test(token)) return 'contains characters other than visible ASCII (letters, digits, punctuation)';
  if (token.length < TOKEN_MIN_LENGTH) return `has ${token.length} characters; at least ${TOKEN_MIN_LENGTH} are needed`;
  return null;
}

function checked(token: string, origin: string): string {
  const why = tokenProblem(token);
  if (why !== null) throw new Error(`the token from ${origin} ${why}`);
  return token;
}

/**
 * GROVE_TOKEN or --token-file override; otherwise `<data>/token`, created on first start with 256 random
 * bits and mode 0600 (written with O_EXCL so two daemons starting at once cannot both mint one).
 */
export async function loadToken(opts: { tokenValue: string | null; tokenFile: string | null; defaultFile: string }): Promise<TokenSource> {
  if (opts.tokenValue !== null) {
    return { token: checked(opts.tokenValue.trim(), 'GROVE_TOKEN'), origin: 'GROVE_TOKEN', created: false };
  }
  const file = opts.tokenFile ?? opts.defaultFile;
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || opts.tokenFile !== null) throw e;
  }
  if (text !== null) return { token: checked(text.trim(), `token file ${file}`), origin: file, created: false };
  const token = randomBytes(32).toString('base64url');
  await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { token, origin: file, created: true };
}
