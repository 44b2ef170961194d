/**
 * `live`: RAM, device state and disk, taken from a running or paused VM; restoring it puts the guest
 * back exactly there, in the same run state. `disk`: the disk alone, taken from a stopped VM.
 */
export interface Snapshot {
  id: string;
  vmId: string;
  /** The snapshot's name inside the qcow2 file: the id it was created with (an import keeps it). */
  tag: string;
  name: string;
  description: string | null;
  kind: 'live' | 'disk';
  /** The VM's state when taken: what a restore returns it to. */
  vmState: 'running' | 'paused' | 'stopped';
  /** The disk's size when taken (GiB): the qcow2 keeps it with the snapshot, so a restore brings it back. */
  diskGB: number;
  createdAt: string;
}
