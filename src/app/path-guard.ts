import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
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
    if (isInside(realRoot, real)) {
      const st = await stat(real);
      if (!st.isFile()) throw new DomainError('VALIDATION_FAILED', `${field} '${userPath}' is not a regular file`, { field });
      return real;
    }
  }
  throw new DomainError('FORBIDDEN_PATH', `${field} '${userPath}' is outside the folders Grove may read (${allowedRoots.join(', ')})`, { field });
}

/**
 * A file to be created inside `root` (relative paths are taken from it): its folder must already exist
 * there (symlinks resolved) and the file must not. Returns the path to create.
 */
export async function resolveNewFileIn(userPath: string, root: string, field: string): Promise<string> {
  if (userPath.includes('\0') || userPath.endsWith('/') || basename(userPath) === '..' || basename(userPath) === '.') {
    throw new DomainError('VALIDATION_FAILED', `${field} must name a file`, { field });
  }
  const candidate = isAbsolute(userPath) ? userPath : join(root, userPath);
  let dir: string;
  try {
    dir = await realpath(dirname(candidate));
  } catch {
    throw new DomainError('VALIDATION_FAILED', `${field}: no such folder for '${userPath}'`, { field });
  }
  const realRoot = await realpath(root);
  if (dir !== realRoot && !isInside(realRoot, dir)) {
    throw new DomainError('FORBIDDEN_PATH', `${field} '${userPath}' is outside the folder Grove may write (${root})`, { field });
  }
  const target = join(dir, basename(candidate));
  if (await lstat(target).then(() => true, () => false)) throw new DomainError('CONFLICT', `'${userPath}' already exists in ${root}`, { field });
  return target;
}

/** `path` lies strictly below `root` (both real paths). */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
