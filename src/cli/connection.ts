import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface ConnectionFlags {
  url?: string | undefined;
  token?: string | undefined;
  dataDir?: string | undefined;
}

export interface Connection {
  url: string;
  token: string | undefined;
  /** Where the URL and the token came from, for error hints ("token from /x/token"). */
  urlSource: string;
  tokenSource: string;
}

export const DEFAULT_PORT = 22100;

/**
 * Where the CLI finds its daemon. URL: --url, GROVE_URL, NEMETON_PORT (the published API's variable),
 * then the local daemon: http://127.0.0.1:$GROVE_PORT, default port 22100. Token: --token, GROVE_TOKEN,
 * NEMETON_TOKEN, then `<data-dir>/token` of the local daemon (--data-dir, GROVE_DATA_DIR,
 * $XDG_DATA_HOME/grove, ~/.local/share/grove — the daemon's own defaults).
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Connection {
  let url: string;
  let urlSource: string;
  if (flags.url) [url, urlSource] = [flags.url, '--url'];
  else if (env['GROVE_URL']) [url, urlSource] = [env['GROVE_URL'], 'GROVE_URL'];
  else if (env['NEMETON_PORT']) [url, urlSource] = [`http://127.0.0.1:${env['NEMETON_PORT']}`, 'NEMETON_PORT'];
  else if (env['GROVE_PORT']) [url, urlSource] = [`http://127.0.0.1:${env['GROVE_PORT']}`, 'GROVE_PORT'];
  else [url, urlSource] = [`http://127.0.0.1:${DEFAULT_PORT}`, 'default'];

  let token: string | undefined;
  let tokenSource: string;
  if (flags.token) [token, tokenSource] = [flags.token, '--token'];
  else if (env['GROVE_TOKEN']) [token, tokenSource] = [env['GROVE_TOKEN'], 'GROVE_TOKEN'];
  else if (env['NEMETON_TOKEN']) [token, tokenSource] = [env['NEMETON_TOKEN'], 'NEMETON_TOKEN'];
  else {
    const dataDir = resolve(flags.dataDir ?? env['GROVE_DATA_DIR'] ?? join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'grove'));
    const file = join(dataDir, 'token');
    tokenSource = file;
    try {
      token = readFileSync(file, 'utf8').trim() || undefined;
    } catch (e) {
      tokenSource = `${file} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`;
    }
  }
  return { url: url.trim(), token: token?.trim(), urlSource, tokenSource };
}
