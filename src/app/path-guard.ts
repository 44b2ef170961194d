import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { DomainError } from '../domain/errors.js';

/**
 * A host path a caller names must resolve (symlinks followed) inside one of the allowed folders.
 * Relative paths are taken relative to the first folder. Returns the resolved real path.
 */
export async function resolveAllowedPath(userPath: string, allowedRoots: string[], field: string): Promise<string> {
  if (userPath.includes('\0')) throw new DomainError('VALIDATION_FAILED', `${field} contains a NUL byte`, { field });
  const candidate = isAbsolute(userPath) ? userPath : join(allowedRoots[0]!, userPath);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new DomainError('VALIDATION_FAILED', `${field}: no such file '${userPath}'`, { field });
  }
  for (const root of allowedRoots) {
    const realRoot = await realpath(root).catch(() => null);
    if (realRoot === null) continue;
    const rel = relative(realRoot, real);
    if (rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel)) {
      const st = await stat(real);
      if (!st.isFile()) throw new DomainError('VALIDATION_FAILED', `${field} '${userPath}' is not a regular file`, { field });
      return real;
    }
  }
  throw new DomainError('FORBIDDEN_PATH', `${field} '${userPath}' is outside the folders Grove may read (${allowedRoots.join(', ')})`, { field });
}
