export interface HostFacts {
  hostname: string;
  os: string;
  kernel: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  freeMemoryBytes: number;
  uptimeSeconds: number;
  loadAverage: [number, number, number];
}

export interface HostProbe {
  facts(): Promise<HostFacts>;
  freeDiskBytes(path: string): Promise<number>;
  /** Busy fraction (0–100) of all CPUs since the previous call. */
  cpuPercent(): Promise<number>;
  fileBytes(path: string): Promise<number>;
}
