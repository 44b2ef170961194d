import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';

export interface TokenSource {
  token: string;
  /** Where it came from, for the start-up message; never the token itself. */
  origin: string;
  created: boolean;
}

/**
 * GROVE_TOKEN or --token-file override; otherwise `<data>/token`, created on first start with 256 random
 * bits and mode 0600 (written with O_EXCL so two daemons starting at once cannot both mint one).
 */
export async function loadToken(opts: { tokenValue: string | null; tokenFile: string | null; defaultFile: string }): Promise<TokenSource> {
  if (opts.tokenValue !== null) {
    if (opts.tokenValue.trim().length < 16) throw new Error('GROVE_TOKEN must be at least 16 characters');
    return { token: opts.tokenValue.trim(), origin: 'GROVE_TOKEN', created: false };
  }
  const file = opts.tokenFile ?? opts.defaultFile;
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length < 16) throw new Error(`token file ${file} holds fewer than 16 characters`);
    return { token, origin: file, created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || opts.tokenFile !== null) throw e;
  }
  const token = randomBytes(32).toString('base64url');
  await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { token, origin: file, created: true };
}
