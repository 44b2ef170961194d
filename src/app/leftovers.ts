import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../ports/logger.js';
import type { DataLayout } from './layout.js';

/**
 * At start-up nothing is being imported, cloned, exported or resumed yet: staging folders and temporary
 * files in VM folders are a crashed run's, and some are as large as a disk or a VM's RAM.
 */
export async function sweepLeftovers(layout: DataLayout, log: Logger): Promise<void> {
  for (const name of await readdir(layout.vms)) {
    if (layout.isStaging(name)) {
      await rm(join(layout.vms, name), { recursive: true, force: true });
      log.warn({ folder: name }, 'removed a staging folder left by an interrupted import or clone');
      continue;
    }
    for (const file of await readdir(join(layout.vms, name)).catch(() => [] as string[])) {
      if (!layout.isVmTemp(file)) continue;
      await rm(join(layout.vms, name, file), { force: true });
      log.warn({ file: join(name, file) }, 'removed a temporary file left by an interrupted run');
    }
  }
}
