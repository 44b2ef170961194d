import { rename, rm, writeFile } from 'node:fs/promises';
import type { SeedFiles, SeedStore } from '../ports/seed-store.js';
import { buildIso9660 } from './iso9660.js';

/** The NoCloud volume label cloud-init looks for. */
export const SEED_VOLUME_ID = 'cidata';

/** Seeds as ISO 9660 images labelled `cidata`, written whole to a temporary name and renamed into place. */
export class IsoSeedStore implements SeedStore {
  async write(path: string, files: SeedFiles): Promise<void> {
    const image = buildIso9660({ volumeId: SEED_VOLUME_ID, files: Object.entries(files).map(([name, text]) => ({ name, data: Buffer.from(text, 'utf8') })) });
    const partial = `${path}.partial`;
    try {
      await writeFile(partial, image, { mode: 0o600 });
      await rename(partial, path);
    } catch (e) {
      await rm(partial, { force: true });
      throw e;
    }
  }
}
