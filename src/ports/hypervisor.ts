import type { Duplex } from 'node:stream';
import type { Accelerator, PortForward, Vm } from '../domain/vm.js';
import type { KeyChord, PointerEvent, ScreenSize } from '../domain/screen-input.js';

/** Where a VM's runtime files live; all inside `<data>/vms/<id>/`. */
export interface VmPaths {
  dir: string;
  disk: string;
  qmpSocket: string;
  /** Base of QEMU's pipe chardev: `<base>.in` is a FIFO for input, `<base>.out` the current boot's output. */
  consolePipe: string;
  consoleIn: string;
  consoleOut: string;
  /** Output of earlier boots; console offsets count this file first, then the current `.out`. */
  consoleHistory: string;
  /** The oldest console offset still kept (decimal text); absent: 0. Bytes before it have been let go. */
  consoleStart: string;
  guestAgentSocket: string;
  pidFile: string;
  qemuLog: string;
  /** RAM and device state of a suspended VM, and what it was doing. */
  savedState: string;
  savedStateMeta: string;
  migrationSocket: string;
  /** The cloud-init seed image, attached read-only when the VM has cloud-init. */
  seed: string;
  /** QEMU's VNC server (RFB), a unix socket only: the screen is never on a TCP port. */
  vncSocket: string;
}

export interface LaunchSpec {
  vm: Vm;
  paths: VmPaths;
  accelerator: Accelerator;
  /** Internal snapshot (RAM + devices + disk) to resume from at start-up (`-loadvm`). */
  loadSnapshot?: string;
  /** Start waiting for a saved state (`-incoming defer`) instead of booting. */
  incoming?: boolean;
}

/** Why a QEMU process ended, as far as QMP told us before its socket closed. */
export interface ExitInfo {
  /** A SHUTDOWN event was seen: the guest powered off, or QEMU was asked to quit. */
  clean: boolean;
  reason: string;
  /** Last lines QEMU wrote to its log, for error reports. */
  stderrTail: string;
}

export type InstanceEvent =
  | { kind: 'paused'; reason: string }
  | { kind: 'resumed' }
  | { kind: 'shutdown'; guest: boolean; reason: string }
  | { kind: 'reset'; guest: boolean }
  | { kind: 'powerdown' }
  | { kind: 'panicked'; detail: string };

export type RunStatus = 'running' | 'paused' | 'shutdown' | 'other';

export interface ResourceUsage {
  pid: number;
  cpuSeconds: number;
  rssBytes: number;
  disk: { readBytes: number; writeBytes: number; readOps: number; writeOps: number };
}

export interface SerialLink {
  write(data: Buffer): Promise<void>;
  /** Bytes appended to the console log, with the log offset of their first byte. */
  onData(listener: (chunk: Buffer, offset: number) => void): () => void;
  /** Log offset up to which data has been delivered. */
  readonly offset: number;
  close(): void;
}

/** A running QEMU, either launched by this daemon or re-adopted after a daemon restart. */
export interface VmInstance {
  readonly pid: number;
  readonly serial: SerialLink;
  /** Resolves once, when the QEMU process is gone (its QMP socket closed). */
  readonly exited: Promise<ExitInfo>;
  onEvent(listener: (e: InstanceEvent) => void): () => void;
  status(): Promise<RunStatus>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  powerdown(): Promise<void>;
  reset(): Promise<void>;
  /** Ask QEMU to quit now (power cut from the guest's point of view); falls back to SIGKILL. */
  kill(): Promise<void>;
  usage(): Promise<ResourceUsage>;
  /** Detach without stopping QEMU (daemon shutdown: VMs outlive the daemon). */
  detach(): void;
  /** Live internal snapshot of RAM, device state and disk, under `tag`. The guest is paused meanwhile. */
  snapshotSave(tag: string): Promise<void>;
  /** Puts RAM, devices and disk back as they were at `tag`; the guest is left paused. */
  snapshotLoad(tag: string): Promise<void>;
  snapshotDelete(tag: string): Promise<void>;
  /** Internal snapshot of the disk alone, taken while QEMU runs (crash-consistent, no RAM). */
  diskSnapshot(tag: string): Promise<void>;
  /** Writes RAM and device state to `paths.savedState` (or `file`); the guest is paused and stays so. */
  saveState(file?: string): Promise<void>;
  /** Loads `paths.savedState` (opened when this QEMU was launched with `incoming`); the guest is running afterwards. */
  loadState(): Promise<void>;
  /** Grow the disk while the guest runs. */
  resizeDisk(bytes: number): Promise<void>;
  /** Writes the display's current frame to `file` as PPM. */
  screendump(file: string): Promise<void>;
  /** Tags of the internal snapshots the running disk holds. */
  snapshotTags(): Promise<string[]>;
  /** The file of the disk's active (top) layer, as QEMU has it open. */
  diskFile(): Promise<string>;
  /**
   * Makes `overlay` (an empty qcow2 whose header names the current top as its backing) the disk's active
   * layer while the guest runs: from here on every write lands in it and the old top is read-only.
   */
  switchDiskTo(overlay: string): Promise<void>;
  /**
   * Aims the user network's host port forwards at `guestIp` (QEMU aims them at the network's first DHCP
   * address, 10.0.2.15, when it starts). Lasts as long as this QEMU.
   */
  retargetPortForwards(forwards: PortForward[], guestIp: string): Promise<void>;
  /** The guest address the host port forwards are aimed at now; null when the VM has none. */
  portForwardTarget(): Promise<string | null>;
  /**
   * Queues chords on the VM's keyboard, each key held `holdMs` (QEMU paces them, so a guest's small PS/2
   * buffer never overflows); resolves once queued, before the guest has them all.
   */
  sendKeys(chords: KeyChord[], holdMs: number): Promise<void>;
  /** Pointer events (absolute position, buttons, wheel) delivered at once, in order, to the active pointer. */
  sendPointer(events: PointerEvent[]): Promise<void>;
  /** The display's current size in pixels (what absolute pointer coordinates are relative to). */
  displaySize(): Promise<ScreenSize>;
  /** A new connection to the VM's VNC server, RFB from its first byte; one per viewer. */
  openVnc(): Promise<Duplex>;
}

export interface Hypervisor {
  readonly accelerator: Accelerator;
  version(): Promise<string>;
  /** The argv QEMU is started with; pure, so tests and benchmarks can use the exact same line. */
  commandLine(spec: LaunchSpec): string[];
  launch(spec: LaunchSpec, consoleFromOffset: number): Promise<VmInstance>;
  /** Re-attach to a QEMU left running by an earlier daemon; null when none is alive for this VM. */
  adopt(spec: LaunchSpec, consoleFromOffset: number): Promise<VmInstance | null>;
}

export interface ConsoleLogReader {
  size(paths: VmPaths): Promise<number>;
  /** Bytes from `from` on; bytes before `start()` read as zeros (they are no longer kept). */
  read(paths: VmPaths, from: number, length: number): Promise<Buffer>;
  /** The oldest offset still kept. Offsets never move: letting old output go only raises this. */
  start(paths: VmPaths): Promise<number>;
  /** Lets every byte before `before` go (disk space freed, offsets unchanged); returns the new start. */
  trim(paths: VmPaths, before: number): Promise<number>;
}
