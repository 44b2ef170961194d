import type { CloudInitConfig } from './cloud-init.js';
import type { Snapshot } from './snapshot.js';
import type { VmNetwork } from './vm.js';

export const BUNDLE_FORMAT = 'grove-vm-bundle';
export const BUNDLE_VERSION = 1;

/** The only entries a bundle may hold; anything else (other names, paths, links) is refused. */
export const BUNDLE_FILES = ['disk.qcow2', 'kernel', 'initrd'] as const;
export type BundleFile = (typeof BUNDLE_FILES)[number];

export const MAX_BOOT_FILE_BYTES = 512 * 1024 * 1024;

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: number;
  groveVersion: string;
  exportedAt: string;
  vm: {
    name: string;
    cpu: number;
    memoryMB: number;
    diskGB: number;
    cmdline?: string;
    network: VmNetwork;
    /** The config (password as a hash) the importing Grove writes the new VM's own seed from. */
    cloudInit?: CloudInitConfig;
  };
  files: Partial<Record<BundleFile, { size: number; sha256: string }>>;
  /** `diskGB` is absent from bundles written before disks with snapshots could grow: the VM's own size then. */
  snapshots: (Pick<Snapshot, 'tag' | 'name' | 'description' | 'kind' | 'vmState' | 'createdAt'> & { diskGB?: number })[];
}
