/** A verified image a base layer is made from. */
export interface ImageSource {
  path: string;
  format: 'qcow2' | 'raw';
  algorithm: 'sha256' | 'sha512';
  /** Lower-case hex. */
  digest: string;
}

/** A layer pinned while it is made and linked: no collection removes it meanwhile. */
export interface PinnedLayer {
  path: string;
  release(): void;
}

/**
 * The disk layer pool: every VM's disk is a link from its folder to its top qcow2 layer, and layers
 * name their backing layers; bases are shared by clones and removed once no chain needs them.
 */
export interface DiskPool {
  /**
   * The read-only base layer of a verified image, named by its digest: made once (a hard link to the
   * image file, so deleting the image later leaves the VMs' disks whole), shared by every VM made from it,
   * and collected like any layer once no VM needs it. Pinned until released.
   */
  imageBase(image: ImageSource): Promise<PinnedLayer>;
  /** A path for a new layer, pinned until released. */
  reserve(): PinnedLayer;
  /** The VM's top layer (following its link), or its disk file when it is not in the pool yet. */
  top(vmId: string): Promise<{ path: string; pooled: boolean }>;
  /** Whether `file` is a layer of this pool. */
  holds(file: string): boolean;
  /** Moves a VM's disk into the pool (no QEMU may have it open); returns the layer. */
  adopt(vmId: string): Promise<string>;
  /** Points a VM folder's disk link at `layer`, atomically. */
  point(diskLink: string, layer: string): Promise<void>;
  /** The name a header next to `layer` in the pool uses for it as a backing file. */
  backingName(layer: string): string;
  /** Marks a layer that has become a shared base read-only. */
  freeze(layer: string): Promise<void>;
  /** A copy of a layer sharing blocks where the filesystem can, keeping holes elsewhere. */
  copyLayer(source: string, target: string): Promise<void>;
  /** Whether the pool's filesystem shares blocks on copy. */
  canReflink(): Promise<boolean>;
  /** Removes the layers no VM folder reaches any more; returns them. */
  collect(): Promise<string[]>;
}
