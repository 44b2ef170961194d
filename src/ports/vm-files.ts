import type { SavedState, SavedStateMeta } from '../domain/saved-state.js';
import type { VmPaths } from './hypervisor.js';

/** The file work of defining and deleting VMs: their folders and their own copies of boot files. */
export interface VmFiles {
  /** Makes a VM's folder, private to Grove. */
  makeDir(dir: string): Promise<void>;
  /** Removes a folder and everything in it; a missing one is fine. */
  removeDir(dir: string): Promise<void>;
  /** The VM's own copy of a boot file (kernel, initrd), sharing blocks where the filesystem can. */
  copyIn(source: string, target: string): Promise<void>;
  /** Moves a staged folder into place, atomically (same filesystem). */
  moveDir(from: string, to: string): Promise<void>;
  /** Whether something (a file or a link, even a dangling one) is at `path`. */
  exists(path: string): Promise<boolean>;
}

/** The saved state of a suspended VM: `state.bin` (QEMU writes it) and its meta file `state.json`. */
export interface SavedStateFiles {
  /** Both files as found, or null when either is missing or the meta file is not one Grove wrote. */
  read(paths: VmPaths): Promise<SavedState | null>;
  writeMeta(paths: VmPaths, meta: SavedStateMeta): Promise<void>;
  /**
   * A resumed state: renamed to `consumedPath` at once so it can never be resumed twice, then deleted in
   * the background (unlinking a file the size of the guest's RAM takes a while nobody needs to wait for).
   */
  consume(paths: VmPaths, consumedPath: string): Promise<void>;
  /** Removes both files; missing ones are fine. */
  discard(paths: VmPaths): Promise<void>;
  /**
   * Places one captured state as the saved state of a VM folder (`paths`), sharing the file (a hard link)
   * so N forks of one capture cost its size once on disk.
   */
  share(captured: string, paths: VmPaths): Promise<void>;
  /** Removes the meta file alone (a suspend that failed before QEMU wrote the state). */
  discardMeta(paths: VmPaths): Promise<void>;
}
