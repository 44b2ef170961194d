import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { DomainError } from '../domain/errors.js';

/**
 * A host path a caller names must resolve (symlinks followed) inside one of the allowed folders.
 * Relative paths are taken relative to the first folder. Returns the resolved real path.
 *
 * No existence oracle: a path outside the allowed folders gets the same refusal (403 FORBIDDEN_PATH, the
 * same detail) whether it exists or not. "No such file" is said only of a path whose nearest existing
 * folder lies inside an allowed one, which tells the caller nothing about the rest of the host.
 */
export async function resolveAllowedPath(userPath: string, allowedRoots: string[], field: string): Promise<string> {
  if (userPath.includes('\0')) throw new DomainError('VALIDATION_FAILED', `${field} contains a NUL byte`, { field });
  const candidate = isAbsolute(userPath) ? userPath : join(allowedRoots[0]!, userPath);
  const roots = await realRoots(allowedRoots);
  const forbidden = new DomainError('FORBIDDEN_PATH', `${field} '${userPath}' is outside the folders Grove may read (${allowedRoots.join(', ')})`, { field });
  const real = await realpath(candidate).catch(() => null);
  if (real === null) {
    if (insideAny(roots, await nearestExisting(candidate))) throw new DomainError('VALIDATION_FAILED', `${field}: no such file '${userPath}'`, { field });
    throw forbidden;
  }
  // Strictly below: an allowed folder itself is not a file in it.
  if (!roots.some((r) => isInside(r, real))) throw forbidden;
  const st = await stat(real);
  if (!st.isFile()) throw new DomainError('VALIDATION_FAILED', `${field} '${userPath}' is not a regular file`, { field });
  return real;
}

/**
 * A file to be created inside `root` (relative paths are taken from it): its folder must already exist
 * there (symlinks resolved) and the file must not. Returns the path to create. As above, a folder outside
 * `root` is refused the same way whether it exists or not.
 */
export async function resolveNewFileIn(userPath: string, root: string, field: string): Promise<string> {
  if (userPath.includes('\0') || userPath.endsWith('/') || basename(userPath) === '..' || basename(userPath) === '.') {
    throw new DomainError('VALIDATION_FAILED', `${field} must name a file`, { field });
  }
  const candidate = isAbsolute(userPath) ? userPath : join(root, userPath);
  const realRoot = await realpath(root);
  const forbidden = new DomainError('FORBIDDEN_PATH', `${field} '${userPath}' is outside the folder Grove may write (${root})`, { field });
  const dir = await realpath(dirname(candidate)).catch(() => null);
  if (dir === null) {
    if (insideAny([realRoot], await nearestExisting(dirname(candidate)))) throw new DomainError('VALIDATION_FAILED', `${field}: no such folder for '${userPath}'`, { field });
    throw forbidden;
  }
  if (dir !== realRoot && !isInside(realRoot, dir)) throw forbidden;
  const target = join(dir, basename(candidate));
  if (await lstat(target).then(() => true, () => false)) throw fileExists(userPath, root, field);
  return target;
}

/** The refusal for a new file whose path is taken, also when another caller created it a moment earlier. */
export function fileExists(userPath: string, root: string, field: string): DomainError {
  return new DomainError('FILE_EXISTS', `'${userPath}' already exists in ${root}; an existing file is never replaced`, { field });
}

async function realRoots(roots: string[]): Promise<string[]> {
  return (await Promise.all(roots.map((r) => realpath(r).catch(() => null)))).filter((r): r is string => r !== null);
}

/**
 * The real path of `path` or of its nearest ancestor that exists; null when one of them is there but
 * cannot be resolved (a dangling link: where it points is not the caller's to learn).
 */
async function nearestExisting(path: string): Promise<string | null> {
  for (let p = path; ; p = dirname(p)) {
    const real = await realpath(p).catch(() => null);
    if (real !== null) return real;
    if (await lstat(p).then(() => true, () => false)) return null;
    if (dirname(p) === p) return p;
  }
}

function insideAny(roots: string[], path: string | null): boolean {
  return path !== null && roots.some((r) => r === path || isInside(r, path));
}

/** `path` lies strictly below `root` (both real paths). */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
