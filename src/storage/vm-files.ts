import { constants as fsc, copyFile, lstat, mkdir, rename, rm } from 'node:fs/promises';
import type { VmFiles } from '../ports/vm-files.js';

/** VM folders and boot-file copies on the local filesystem. */
export class FsVmFiles implements VmFiles {
  async makeDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  async removeDir(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  async copyIn(source: string, target: string): Promise<void> {
    // FICLONE: a reflink where the filesystem can, a plain copy elsewhere.
    await copyFile(source, target, fsc.COPYFILE_FICLONE);
  }

  async moveDir(from: string, to: string): Promise<void> {
    await rename(from, to);
  }

  async exists(path: string): Promise<boolean> {
    try {
      await lstat(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }
}
