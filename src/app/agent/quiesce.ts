/**
 * Filesystem quiescing for disk-only copies of a running guest (disk snapshots, clones): what they
 * capture is then what the guest's filesystems hold, not a power-cut image. Implemented by the
 * AgentService (guest-fsfreeze-freeze/-thaw); services that copy disks take it as an optional dependency.
 */
export interface Quiescer {
  /**
   * Runs `fn` with the guest's filesystems frozen when the VM runs and its agent answers (otherwise
   * just runs it). The freeze is time-bounded, and the filesystems are thawed afterwards whatever
   * happened. `frozen` says whether the guest was frozen during `fn`.
   */
  quiesced<T>(vmId: string, fn: () => Promise<T>): Promise<{ result: T; frozen: boolean }>;
}
