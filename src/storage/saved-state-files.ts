import { constants } from 'node:fs';
import { copyFile, link, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { parseSavedStateMeta, type SavedState, type SavedStateMeta } from '../domain/saved-state.js';
import type { VmPaths } from '../ports/hypervisor.js';
import type { SavedStateFiles } from '../ports/vm-files.js';

/** `state.json` as JSON beside QEMU's `state.bin`, in the VM's folder. */
export class FsSavedStateFiles implements SavedStateFiles {
  async read(paths: VmPaths): Promise<SavedState | null> {
    let text: string;
    let bytes: number;
    try {
      [text, bytes] = await Promise.all([readFile(paths.savedStateMeta, 'utf8'), stat(paths.savedState).then((s) => s.size)]);
    } catch {
      return null;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return null;
    }
    const meta = parseSavedStateMeta(raw);
    return meta ? { ...meta, bytes } : null;
  }

  async writeMeta(paths: VmPaths, meta: SavedStateMeta): Promise<void> {
    await writeFile(paths.savedStateMeta, JSON.stringify(meta), { mode: 0o600 });
  }

  async consume(paths: VmPaths, consumedPath: string): Promise<void> {
    await rename(paths.savedState, consumedPath);
    await rm(paths.savedStateMeta, { force: true });
    void rm(consumedPath, { force: true }).catch(() => undefined);
  }

  async discard(paths: VmPaths): Promise<void> {
    await Promise.all([rm(paths.savedState, { force: true }), rm(paths.savedStateMeta, { force: true })]);
  }

  async share(captured: string, paths: VmPaths): Promise<void> {
    try {
      await link(captured, paths.savedState);
    } catch {
      await copyFile(captured, paths.savedState, constants.COPYFILE_FICLONE);
    }
  }

  async discardMeta(paths: VmPaths): Promise<void> {
    await rm(paths.savedStateMeta, { force: true });
  }
}
