/** A NoCloud seed's files by name (`meta-data`, `user-data`). */
export type SeedFiles = Record<string, string>;

/** Writes and reads back a VM's cloud-init seed image (a `cidata` volume the guest's cloud-init finds). */
export interface SeedStore {
  /** Writes the image at `path` (replacing one that is there), readable by QEMU only through the VM folder. */
  write(path: string, files: SeedFiles): Promise<void>;
}
