export interface DiskInfo {
  virtualSize: number;
  actualSize: number;
  format: string;
}

export interface DiskStore {
  create(path: string, sizeGB: number): Promise<void>;
  /** A standalone qcow2 copy of `source` (whose format is named, never probed), grown to at least sizeGB. */
  createFrom(path: string, source: string, sourceFormat: 'qcow2' | 'raw', sizeGB: number): Promise<void>;
  info(path: string): Promise<DiskInfo>;
  /** The file really is of `format` and names no other file (backing or data file); else VALIDATION_FAILED. */
  assertStandalone(path: string, format: 'qcow2' | 'raw'): Promise<void>;
  /** Grow a disk no QEMU has open. */
  resize(path: string, sizeGB: number): Promise<void>;
  /** Internal qcow2 snapshots of a disk no QEMU has open. */
  snapshotCreate(path: string, tag: string): Promise<void>;
  snapshotApply(path: string, tag: string): Promise<void>;
  snapshotDelete(path: string, tag: string): Promise<void>;
  snapshotList(path: string): Promise<{ tag: string; vmStateBytes: number }[]>;
  version(): Promise<string>;
}
