import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { ExitInfo, InstanceEvent, ResourceUsage, RunStatus, SerialLink, VmInstance, VmPaths } from '../../ports/hypervisor.js';
import type { Logger } from '../../ports/logger.js';
import { errorMessage } from '../../util/errors.js';
import { QmpClient, type QmpEvent } from './qmp/index.js';
import * as qmp from './qmp/commands.js';
import { loadStateFromInheritedFd, saveStateToFile } from './migration.js';
import { isAlive, procCpuSeconds, procRssBytes, waitForProcessEnd } from './proc-stats.js';
import { DISK_DEVICE, DISK_NODE, NETDEV_ID, hostForwardRule } from './config/argv.js';
import { readRange, sizeOr0 } from '../../util/files.js';
import type { Duplex } from 'node:stream';
import type { KeyChord, PointerEvent, ScreenSize } from '../../domain/screen-input.js';
import { isDottedIPv4, type PortForward } from '../../domain/vm.js';
import { connectVnc, toQmpInput, vncDisplaySize } from './screen.js';
import { hostForwardTargets } from './usernet.js';

const KILL_GRACE_MS = 3000;
const PROCESS_END_MS = 3000;

/** The console link as the instance needs it: one last read when QEMU exits (QemuSerialLink). */
export interface ClosingSerialLink extends SerialLink {
  flushAndClose(): Promise<void>;
}

export class QemuInstance implements VmInstance {
  readonly exited: Promise<ExitInfo>;
  private readonly listeners = new Set<(e: InstanceEvent) => void>();
  private shutdownReason: string | null = null;
  private detached = false;
  private jobSeq = 0;

  constructor(
    readonly pid: number,
    private readonly qmpClient: QmpClient,
    readonly serial: ClosingSerialLink,
    private readonly paths: VmPaths,
    private readonly log: Logger,
  ) {
    qmpClient.on('event', (e: QmpEvent) => this.onQmpEvent(e));
    this.exited = new Promise<ExitInfo>((resolve) => {
      qmpClient.once('close', () => {
        // Stop, suspend and delete wait on `exited`: a failure while watching must still report the exit.
        this.watchExit().then(resolve, (e: unknown) => resolve(this.watchFailed(e)));
      });
    });
  }

  private async watchExit(): Promise<ExitInfo> {
    // Both run to their end even when the flush fails: the disk is only free once the process is gone.
    const [flushed] = await Promise.allSettled([this.serial.flushAndClose(), waitForProcessEnd(this.pid, PROCESS_END_MS)]);
    if (flushed.status === 'rejected') throw flushed.reason;
    // QEMU's own words only matter when it did not end cleanly.
    const tail = this.shutdownReason === null ? await readTail(this.paths.qemuLog, 4096) : '';
    return {
      clean: this.shutdownReason !== null,
      reason: this.shutdownReason ?? 'QEMU exited without a shutdown (killed or crashed)',
      stderrTail: tail,
    };
  }

  private watchFailed(e: unknown): ExitInfo {
    this.log.error({ err: e, pid: this.pid }, 'watching QEMU\'s exit failed; the exit is reported without its details');
    return {
      clean: this.shutdownReason !== null,
      reason: `${this.shutdownReason ?? 'QEMU exited'} (its exit could not be watched to the end: ${errorMessage(e)})`,
      stderrTail: '',
    };
  }

  private onQmpEvent(e: QmpEvent): void {
    const d = e.data ?? {};
    let ev: InstanceEvent | null = null;
    switch (e.event) {
      case 'STOP': ev = { kind: 'paused', reason: 'stop' }; break;
      case 'RESUME': ev = { kind: 'resumed' }; break;
      case 'SHUTDOWN':
        this.shutdownReason = typeof d['reason'] === 'string' ? d['reason'] : 'shutdown';
        ev = { kind: 'shutdown', guest: Boolean(d['guest']), reason: this.shutdownReason };
        break;
      case 'RESET': ev = { kind: 'reset', guest: Boolean(d['guest']) }; break;
      case 'POWERDOWN': ev = { kind: 'powerdown' }; break;
      case 'GUEST_PANICKED': ev = { kind: 'panicked', detail: JSON.stringify(d) }; break;
      default: return;
    }
    for (const l of this.listeners) l(ev);
  }

  onEvent(listener: (e: InstanceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async status(): Promise<RunStatus> {
    const s = await qmp.queryStatus(this.qmpClient);
    if (s.status === 'running') return 'running';
    if (s.status === 'paused' || s.status === 'suspended') return 'paused';
    if (s.status === 'shutdown') return 'shutdown';
    return 'other';
  }

  pause(): Promise<void> { return qmp.stop(this.qmpClient); }
  resume(): Promise<void> { return qmp.cont(this.qmpClient); }
  powerdown(): Promise<void> { return qmp.systemPowerdown(this.qmpClient); }
  reset(): Promise<void> { return qmp.systemReset(this.qmpClient); }

  async kill(): Promise<void> {
    try {
      await qmp.quit(this.qmpClient);
    } catch {
      // QMP already gone or wedged: fall through to the signal.
    }
    const grace = new AbortController();
    try {
      const done = await Promise.race([
        this.exited.then(() => true),
        delay(KILL_GRACE_MS, false, { signal: grace.signal }),
      ]);
      if (!done && isAlive(this.pid)) {
        try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
      }
    } finally {
      grace.abort(); // a quit that worked must not leave the grace timer pending
    }
    await this.exited;
  }

  async usage(): Promise<ResourceUsage> {
    const [cpuSeconds, rssBytes, stats] = await Promise.all([
      procCpuSeconds(this.pid).catch(() => 0),
      procRssBytes(this.pid).catch(() => 0),
      qmp.queryBlockstats(this.qmpClient).catch(() => []),
    ]);
    const disk = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
    for (const s of stats) {
      disk.readBytes += s.stats.rd_bytes; disk.writeBytes += s.stats.wr_bytes;
      disk.readOps += s.stats.rd_operations; disk.writeOps += s.stats.wr_operations;
    }
    return { pid: this.pid, cpuSeconds, rssBytes, disk };
  }

  async snapshotSave(tag: string): Promise<void> {
    await this.snapshotJob('save', tag);
  }

  async snapshotLoad(tag: string): Promise<void> {
    await this.snapshotJob('load', tag);
  }

  async snapshotDelete(tag: string): Promise<void> {
    await this.snapshotJob('delete', tag);
  }

  async saveState(file?: string): Promise<void> {
    await saveStateToFile(this.qmpClient, this.paths.migrationSocket, file ?? this.paths.savedState);
  }

  async loadState(): Promise<void> {
    await loadStateFromInheritedFd(this.qmpClient);
  }

  async resizeDisk(bytes: number): Promise<void> {
    await qmp.blockResize(this.qmpClient, (await this.top()).node, bytes);
  }

  async screendump(file: string): Promise<void> {
    await qmp.screendump(this.qmpClient, file, 'ppm');
  }

  async sendKeys(chords: KeyChord[], holdMs: number): Promise<void> {
    for (const chord of chords) await qmp.sendKey(this.qmpClient, chord, holdMs);
  }

  async sendPointer(events: PointerEvent[]): Promise<void> {
    await qmp.inputSendEvent(this.qmpClient, events.map(toQmpInput));
  }

  displaySize(): Promise<ScreenSize> {
    return vncDisplaySize(this.paths.vncSocket);
  }

  openVnc(): Promise<Duplex> {
    return connectVnc(this.paths.vncSocket);
  }

  async diskSnapshot(tag: string): Promise<void> {
    await qmp.blockdevSnapshotInternalSync(this.qmpClient, (await this.top()).node, tag);
  }

  async snapshotTags(): Promise<string[]> {
    return ((await this.top()).info.image?.snapshots ?? []).map((s) => s.name);
  }

  async diskFile(): Promise<string> {
    return imageFileName((await this.top()).info.file);
  }

  async switchDiskTo(overlay: string): Promise<void> {
    const { node } = await this.top();
    const added = `layer-${randomBytes(6).toString('hex')}`;
    await qmp.blockdevAddOverlay(this.qmpClient, added, overlay);
    try {
      await qmp.blockdevSnapshot(this.qmpClient, node, added);
    } catch (e) {
      await qmp.blockdevDel(this.qmpClient, added).catch(() => undefined);
      throw e;
    }
  }

  async retargetPortForwards(forwards: PortForward[], guestIp: string): Promise<void> {
    // Goes into an HMP command line: only a dotted IPv4 address may.
    if (!isDottedIPv4(guestIp)) throw new Error(`not an IPv4 address: ${guestIp}`);
    for (const f of forwards) {
      const { host, rule } = hostForwardRule(f, guestIp);
      await qmp.humanMonitorCommand(this.qmpClient, `hostfwd_remove ${NETDEV_ID} ${host}`);
      const added = (await qmp.humanMonitorCommand(this.qmpClient, `hostfwd_add ${NETDEV_ID} ${rule}`)).trim();
      if (added !== '') throw new Error(`hostfwd_add ${rule}: ${added}`);
    }
  }

  async portForwardTarget(): Promise<string | null> {
    const targets = hostForwardTargets(await qmp.humanMonitorCommand(this.qmpClient, 'info usernet'));
    return targets.values().next().value ?? null;
  }

  /**
   * The disk's active node: `disk0` as launched, another name once a clone has put an overlay on top.
   * Asked of QEMU each time (a cheap query) so a re-adopted QEMU needs no remembered state.
   */
  private async top(): Promise<{ node: string; info: qmp.BlockDeviceInfo }> {
    const block = await qmp.queryBlock(this.qmpClient);
    const dev = block.find((b) => b.qdev?.split('/').includes(DISK_DEVICE)) ?? block.find((b) => b.inserted?.['node-name'] === DISK_NODE);
    const node = dev?.inserted?.['node-name'];
    if (!dev?.inserted || node === undefined) throw new Error('QEMU reports no disk behind the VM\'s disk device');
    return { node, info: dev.inserted };
  }

  private async snapshotJob(kind: 'save' | 'load' | 'delete', tag: string): Promise<void> {
    const jobId = `grove-snap${kind === 'delete' ? 'del' : kind}-${++this.jobSeq}`;
    const node = (await this.top()).node;
    const args = { jobId, tag, vmstate: node, devices: [node] };
    if (kind === 'save') await qmp.snapshotSave(this.qmpClient, args);
    else if (kind === 'load') await qmp.snapshotLoad(this.qmpClient, args);
    else await qmp.snapshotDelete(this.qmpClient, { jobId, tag, devices: [node] });
    await qmp.waitForJob(this.qmpClient, jobId);
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.qmpClient.removeAllListeners('close');
    // Closing our end of a socket has nothing to report; the daemon is going away or letting go of QEMU.
    this.qmpClient.close().catch(() => undefined);
    this.serial.close();
  }
}

/**
 * A node opened with options that a plain name cannot express (ours: `backing: null`) is named by QEMU
 * as `json:{...}`; the image file is then the `file` child's `filename`.
 */
export function imageFileName(name: string): string {
  if (!name.startsWith('json:')) return name;
  let opts: unknown;
  try {
    opts = JSON.parse(name.slice('json:'.length));
  } catch {
    throw new Error(`QEMU names the disk by an unreadable pseudo-filename: ${name.slice(0, 200)}`);
  }
  const file = (opts as { file?: { filename?: unknown } | string }).file;
  const filename = typeof file === 'string' ? file : file?.filename;
  if (typeof filename !== 'string') throw new Error(`QEMU's name for the disk has no file name: ${name.slice(0, 200)}`);
  return filename;
}

/** Never throws: it runs while an exit is being reported, which must not fail for want of a log. */
async function readTail(path: string, bytes: number): Promise<string> {
  try {
    const size = await sizeOr0(path);
    return (await readRange(path, Math.max(0, size - bytes), bytes)).toString('utf8').trim();
  } catch {
    return '';
  }
}
