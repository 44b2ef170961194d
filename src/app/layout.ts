import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { VmPaths } from '../ports/hypervisor.js';

/** A VM's NoCloud seed image, in its folder (also while a clone or an import is staged). */
export const SEED_FILE = 'seed.iso';

/** The data directory's shape (SPEC §1). Pure path arithmetic; creating folders is the daemon's job. */
export class DataLayout {
  constructor(readonly root: string) {}

  get db(): string { return join(this.root, 'grove.db'); }
  get token(): string { return join(this.root, 'token'); }
  get vms(): string { return join(this.root, 'vms'); }
  get images(): string { return join(this.root, 'images'); }
  /** Disk layers: each VM's `disk.qcow2` is a link to its top layer here; bases are shared by clones. */
  get disks(): string { return join(this.root, 'disks'); }
  get transfer(): string { return join(this.root, 'transfer'); }
  /** Grove's own SSH key pair and known-hosts file. */
  get ssh(): string { return join(this.root, 'ssh'); }

  vmDir(id: string): string { return join(this.vms, id); }

  /** A downloaded distro image, once verified. */
  image(file: string): string { return join(this.images, file); }
  /** The same image while it downloads: never used as an image (VM creation refuses `.part` files). */
  imagePart(file: string): string { return join(this.images, `${file}.part`); }

  /**
   * A private folder under vms/ where a VM is put together (import, clone) before it is renamed into
   * place; one left by a crash is removed at start-up.
   */
  stagingDir(kind: 'import' | 'clone' | 'fork', id: string): string { return join(this.vms, `.${kind}-${id}`); }
  isStaging(name: string): boolean { return /^\.(import|clone|fork)-/.test(name); }

  /** A flattened copy of a layered disk, in its VM folder while an export reads it. */
  exportTemp(id: string): string { return join(this.vmDir(id), `export-${randomBytes(4).toString('hex')}.qcow2`); }
  /** A frame QEMU dumps for a screenshot, read back and removed at once. */
  screendumpTemp(id: string): string { return join(this.vmDir(id), `screendump-${randomBytes(4).toString('hex')}.ppm`); }
  /** A saved state that was resumed: renamed so it is never resumed twice, deleted after answering. */
  consumedState(id: string): string { return `${this.vmPaths(id).savedState}.consumed`; }
  /** Whether a file in a VM folder is one of the temporary files above (a crash can leave them). */
  isVmTemp(name: string): boolean { return /^(export-[0-9a-f]{8}\.qcow2|screendump-[0-9a-f]{8}\.ppm|state\.bin\.consumed)$/.test(name); }

  /** A VM's file names inside another folder (a staging folder that becomes the VM's). */
  vmPaths(id: string): VmPaths {
    return this.pathsIn(this.vmDir(id));
  }

  pathsIn(dir: string): VmPaths {
    return {
      dir,
      disk: join(dir, 'disk.qcow2'),
      qmpSocket: join(dir, 'qmp.sock'),
      consolePipe: join(dir, 'console'),
      consoleIn: join(dir, 'console.in'),
      consoleOut: join(dir, 'console.out'),
      consoleHistory: join(dir, 'console.history'),
      consoleStart: join(dir, 'console.start'),
      guestAgentSocket: join(dir, 'qga.sock'),
      pidFile: join(dir, 'qemu.pid'),
      qemuLog: join(dir, 'qemu.log'),
      savedState: join(dir, 'state.bin'),
      savedStateMeta: join(dir, 'state.json'),
      migrationSocket: join(dir, 'migrate.sock'),
      seed: join(dir, SEED_FILE),
      vncSocket: join(dir, 'vnc.sock'),
    };
  }
}
