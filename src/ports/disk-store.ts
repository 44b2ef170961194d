export interface DiskInfo {
  virtualSize: number;
  actualSize: number;
  format: string;
}

export interface DiskStore {
  create(path: string, sizeGB: number): Promise<void>;
  /** A standalone qcow2 copy of `source` (whose format is named, never probed), grown to at least sizeGB. */
  createFrom(path: string, source: string, sourceFormat: 'qcow2' | 'raw', sizeGB: number): Promise<void>;
  /**
   * A new, empty qcow2 over `backing` (a name relative to the new file's folder, so the data directory
   * can move), `sizeBytes` large. Nothing is opened: the backing may be in use by a running QEMU.
   */
  createOverlay(path: string, backing: string, sizeBytes: number): Promise<void>;
  /** The backing file name recorded in a qcow2 header (as written), or null when standalone. */
  backingName(path: string): Promise<string | null>;
  /**
   * From the header alone (no process started: clones ask on their fast path): the virtual size, and
   * whether the layer holds data or snapshots of its own (false: every read goes through to its backing).
   */
  layerFacts(path: string): Promise<{ virtualSize: number; holdsData: boolean }>;
  /** A standalone qcow2 holding what the guest sees through `path`'s whole chain (no snapshots). */
  flatten(path: string, target: string): Promise<void>;
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
