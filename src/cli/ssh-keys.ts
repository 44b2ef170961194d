import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The caller's own public keys (`~/.ssh/id_*.pub`), which the CLI adds to a new VM's cloud-init so the
 * user can log in with plain `ssh` too. The daemon never reads anyone's home: the CLI sends the keys.
 */
export function localPublicKeys(home = homedir()): string[] {
  const dir = join(home, '.ssh');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^id_[A-Za-z0-9_-]+\.pub$/.test(n)).sort();
  } catch {
    return [];
  }
  const keys: string[] = [];
  for (const n of names) {
    let line: string;
    try {
      line = readFileSync(join(dir, n), 'utf8').split('\n', 1)[0]!.trim();
    } catch {
      continue;
    }
    // Only what the daemon takes as a key line: a damaged file here must not make every create fail.
    if (line.length <= 8192 && !/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(line) && /(^|\s)(ssh|ecdsa|sk)-\S+\s+AAAA/.test(line)) keys.push(line);
  }
  return keys;
}
