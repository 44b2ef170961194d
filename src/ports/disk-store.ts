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
  version(): Promise<string>;
}
