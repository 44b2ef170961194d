import { chmod, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataLayout } from '../app/layout.js';
import { errorMessage } from '../util/errors.js';

/** What start-up did about a path whose mode let others in: tightened it, or could not (a warning). */
export interface PermissionFinding {
  path: string;
  was: string;
  now: string | null;
  warning?: string;
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/**
 * The files that hold secrets: the database (webhook secrets; SQLite gives its -wal and -shm the
 * database's own mode), the token, Grove's SSH private key. A folder or file of ours whose mode lets
 * group or others in is tightened (0700 / 0600); when that fails (another owner, a read-only mount) it is
 * reported as a warning, never a refusal to start.
 */
export function secretFiles(layout: DataLayout): string[] {
  return [layout.db, `${layout.db}-wal`, `${layout.db}-shm`, layout.token, join(layout.ssh, 'id_ed25519')];
}

export async function tightenDataDir(layout: DataLayout): Promise<PermissionFinding[]> {
  const found: PermissionFinding[] = [];
  for (const dir of [layout.root, layout.ssh]) await tighten(dir, 0o700, found);
  for (const file of secretFiles(layout)) await tighten(file, 0o600, found);
  return found;
}

/**
 * The database file made before SQLite opens it, so it is 0600 from its first byte (SQLite creates a
 * missing file with the process umask, 0644 on most hosts).
 */
export async function createPrivateFile(path: string): Promise<void> {
  const fh = await open(path, 'a', 0o600);
  await fh.close();
}

/** A token file named by --token-file is the user's: never changed, only warned about when others can read it. */
export async function checkForeignSecret(path: string): Promise<PermissionFinding | null> {
  const st = await stat(path).catch(() => null);
  if (st === null || (st.mode & 0o077) === 0) return null;
  return { path, was: octal(st.mode), now: null, warning: 'group or others can read this token file; chmod 600 it' };
}

async function tighten(path: string, mode: number, found: PermissionFinding[]): Promise<void> {
  const st = await stat(path).catch(() => null);
  if (st === null || (st.mode & 0o077) === 0) return;
  try {
    await chmod(path, mode);
    found.push({ path, was: octal(st.mode), now: octal(mode) });
  } catch (e) {
    found.push({ path, was: octal(st.mode), now: null, warning: `cannot tighten it to ${octal(mode)}: ${errorMessage(e)}` });
  }
}
