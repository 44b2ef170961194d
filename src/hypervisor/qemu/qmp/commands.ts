import type { QmpClient } from './client.js';
import { QmpClosedError, QmpError, QmpJobError, QmpTimeoutError } from './errors.js';

/** Queries and simple actions: QEMU answers these from its main loop at once. */
export const QUICK_TIMEOUT_MS = 5_000;
/** Synchronous commands that do I/O in QEMU's main loop before replying. */
export const IO_TIMEOUT_MS = 30_000;
/** Background jobs such as snapshot-save, which writes all of guest RAM. */
export const JOB_TIMEOUT_MS = 10 * 60_000;
/** A whole migration stream (all of guest RAM) to or from a local file. */
export const MIGRATION_TIMEOUT_MS = 10 * 60_000;
/** blockdev-snapshot-internal-sync writes the snapshot table synchronously in QEMU's main loop. */
const INTERNAL_SNAPSHOT_TIMEOUT_MS = 60_000;

const quick = { timeoutMs: QUICK_TIMEOUT_MS };
const io = { timeoutMs: IO_TIMEOUT_MS };

/** QAPI RunState (QEMU 7.2). */
export type RunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo';

export interface StatusInfo {
  status: RunState;
  running: boolean;
  /** Deprecated in QEMU 8.1 and later removed; present on 7.2. */
  singlestep?: boolean;
}

export interface VersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export interface KvmInfo {
  enabled: boolean;
  present: boolean;
}

export interface BlockInfo {
  /** Legacy drive id; "" for devices backed by -blockdev only. */
  device: string;
  qdev?: string;
  type: string;
  removable: boolean;
  locked: boolean;
  tray_open?: boolean;
  'io-status'?: 'ok' | 'failed' | 'nospace';
  inserted?: BlockDeviceInfo;
}

export interface BlockDeviceInfo {
  file: string;
  'node-name'?: string;
  ro: boolean;
  drv: string;
  backing_file?: string;
  backing_file_depth: number;
  encrypted: boolean;
  detect_zeroes: 'off' | 'on' | 'unmap';
  cache: { writeback: boolean; direct: boolean; 'no-flush': boolean };
  image: ImageInfo;
}

export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'cluster-size'?: number;
  'dirty-flag'?: boolean;
  'backing-filename'?: string;
  snapshots?: SnapshotInfo[];
}

export interface SnapshotInfo {
  id: string;
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  'vm-clock-nsec': number;
  icount?: number;
}

export interface BlockDeviceStats {
  rd_bytes: number;
  wr_bytes: number;
  rd_operations: number;
  wr_operations: number;
  flush_operations: number;
  rd_total_time_ns: number;
  wr_total_time_ns: number;
  flush_total_time_ns: number;
}

export interface BlockStats {
  device?: string;
  qdev?: string;
  'node-name'?: string;
  stats: BlockDeviceStats;
  parent?: BlockStats;
  backing?: BlockStats;
}

/** QAPI JobStatus. */
export type JobStatus =
  | 'undefined'
  | 'created'
  | 'running'
  | 'paused'
  | 'ready'
  | 'standby'
  | 'waiting'
  | 'pending'
  | 'aborting'
  | 'concluded'
  | 'null';

export interface JobInfo {
  id: string;
  /** e.g. "snapshot-save", "snapshot-load", "snapshot-delete", "mirror". */
  type: string;
  status: JobStatus;
  'current-progress': number;
  'total-progress': number;
  /** Set once a concluded job has failed. */
  error?: string;
}

export interface SnapshotJobArgs {
  jobId: string;
  tag: string;
  /** node-name of the block device that receives (or provides) the VM state. */
  vmstate: string;
  /** node-names whose disk snapshot is saved/loaded; must include `vmstate`. */
  devices: string[];
}

export interface SnapshotDeleteArgs {
  jobId: string;
  tag: string;
  devices: string[];
}

export function queryStatus(c: QmpClient): Promise<StatusInfo> {
  return c.execute<StatusInfo>('query-status', undefined, quick);
}

export async function stop(c: QmpClient): Promise<void> {
  await c.execute('stop', undefined, quick);
}

export async function cont(c: QmpClient): Promise<void> {
  await c.execute('cont', undefined, quick);
}

/** Presses the ACPI power button; returns before the guest reacts (or ignores it). */
export async function systemPowerdown(c: QmpClient): Promise<void> {
  await c.execute('system_powerdown', undefined, quick);
}

export async function systemReset(c: QmpClient): Promise<void> {
  await c.execute('system_reset', undefined, quick);
}

/**
 * Asks QEMU to exit. QEMU normally replies before closing the socket, but if
 * it exits first the reply is lost; the connection closing counts as success.
 */
export async function quit(c: QmpClient): Promise<void> {
  if (c.closed) throw new QmpClosedError("cannot execute 'quit': QMP connection is closed");
  try {
    await c.execute('quit', undefined, quick);
  } catch (err) {
    if (!(err instanceof QmpClosedError)) throw err;
  }
}

export function queryVersion(c: QmpClient): Promise<VersionInfo> {
  return c.execute<VersionInfo>('query-version', undefined, quick);
}

export function queryKvm(c: QmpClient): Promise<KvmInfo> {
  return c.execute<KvmInfo>('query-kvm', undefined, quick);
}

export function queryBlock(c: QmpClient): Promise<BlockInfo[]> {
  return c.execute<BlockInfo[]>('query-block', undefined, quick);
}

export function queryBlockstats(c: QmpClient, opts: { queryNodes?: boolean } = {}): Promise<BlockStats[]> {
  const args = opts.queryNodes === undefined ? undefined : { 'query-nodes': opts.queryNodes };
  return c.execute<BlockStats[]>('query-blockstats', args, quick);
}

/**
 * Opens `file` as a new qcow2 node with no backing yet (blockdev-snapshot gives it one). Cache and discard
 * options match what the argv builder gives the VM's disk, so the guest sees no change in behaviour.
 */
export async function blockdevAddOverlay(c: QmpClient, nodeName: string, file: string): Promise<void> {
  await c.execute('blockdev-add', {
    driver: 'qcow2', 'node-name': nodeName, discard: 'unmap', backing: null,
    file: { driver: 'file', filename: file, cache: { direct: false }, discard: 'unmap' },
  }, io);
}

/** Makes `overlay` the active layer over `node`; atomic for guest I/O. */
export async function blockdevSnapshot(c: QmpClient, node: string, overlay: string): Promise<void> {
  await c.execute('blockdev-snapshot', { node, overlay }, io);
}

/** Takes a disk-only internal snapshot of `device` (a node name) at once; the guest keeps running. */
export async function blockdevSnapshotInternalSync(c: QmpClient, device: string, name: string): Promise<void> {
  await c.execute('blockdev-snapshot-internal-sync', { device, name }, { timeoutMs: INTERNAL_SNAPSHOT_TIMEOUT_MS });
}

export async function blockdevDel(c: QmpClient, nodeName: string): Promise<void> {
  await c.execute('blockdev-del', { 'node-name': nodeName }, io);
}

/** Grows (or shrinks) the image behind a -blockdev node. */
export async function blockResize(c: QmpClient, nodeName: string, sizeBytes: number): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new RangeError(`invalid size ${sizeBytes}`);
  await c.execute('block_resize', { 'node-name': nodeName, size: sizeBytes }, io);
}

/** Needs a graphics console; with `-display none -nodefaults` QEMU answers GenericError. */
export async function screendump(c: QmpClient, filename: string, format?: 'ppm' | 'png'): Promise<void> {
  await c.execute('screendump', format ? { filename, format } : { filename }, io);
}

/** One InputEvent of QAPI (QEMU 7.2): a pointer button or an absolute axis (0..32767). */
export type InputEvent =
  | { type: 'btn'; data: { down: boolean; button: string } }
  | { type: 'abs'; data: { axis: 'x' | 'y'; value: number } };

/** Delivered at once and in order, to the VM's keyboard and its active pointer (no display needed). */
export async function inputSendEvent(c: QmpClient, events: InputEvent[]): Promise<void> {
  await c.execute('input-send-event', { events }, quick);
}

/**
 * Presses the keys (QKeyCodes) in order and releases them in reverse, each step `holdMs` apart on QEMU's
 * own timer queue; later calls queue behind earlier ones. Answers once queued.
 */
export async function sendKey(c: QmpClient, keys: string[], holdMs: number): Promise<void> {
  await c.execute('send-key', { keys: keys.map((k) => ({ type: 'qcode', data: k })), 'hold-time': holdMs }, quick);
}

/** HMP passthrough; the output uses "\r\n" line endings. */
export function humanMonitorCommand(c: QmpClient, commandLine: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  return c.execute<string>('human-monitor-command', { 'command-line': commandLine }, { timeoutMs: opts.timeoutMs ?? IO_TIMEOUT_MS });
}

export function queryJobs(c: QmpClient): Promise<JobInfo[]> {
  return c.execute<JobInfo[]>('query-jobs', undefined, quick);
}

export async function jobDismiss(c: QmpClient, jobId: string): Promise<void> {
  await c.execute('job-dismiss', { id: jobId }, quick);
}

/**
 * Starts a snapshot-save job and returns once it exists; follow with
 * waitForJob(). The job id stays taken until the job is dismissed.
 */
export async function snapshotSave(c: QmpClient, a: SnapshotJobArgs): Promise<void> {
  await c.execute('snapshot-save', { 'job-id': a.jobId, tag: a.tag, vmstate: a.vmstate, devices: a.devices }, quick);
}

export async function snapshotLoad(c: QmpClient, a: SnapshotJobArgs): Promise<void> {
  await c.execute('snapshot-load', { 'job-id': a.jobId, tag: a.tag, vmstate: a.vmstate, devices: a.devices }, quick);
}

/** Note: QEMU 7.2 concludes without error when `tag` does not exist. */
export async function snapshotDelete(c: QmpClient, a: SnapshotDeleteArgs): Promise<void> {
  await c.execute('snapshot-delete', { 'job-id': a.jobId, tag: a.tag, devices: a.devices }, quick);
}

/**
 * Waits for a job to reach `concluded`, dismisses it, and throws QmpJobError if
 * it failed. Snapshot jobs are created with manual dismiss (the commands take
 * no `auto-dismiss` argument), so a concluded job lingers in query-jobs, with
 * its error, until job-dismiss; that is also what frees its id.
 *
 * QEMU may emit the `concluded` event before, or in the same read as, the reply
 * that started the job, so the event subscription is backed by a query-jobs
 * check instead of relying on seeing the event.
 */
export async function waitForJob(c: QmpClient, jobId: string, timeoutMs: number = JOB_TIMEOUT_MS): Promise<JobInfo> {
  const abort = new AbortController();
  const concluded = c.waitForEvent('JOB_STATUS_CHANGE', {
    timeoutMs,
    signal: abort.signal,
    predicate: (d) => d.id === jobId && d.status === 'concluded',
  });
  concluded.catch(() => {}); // consumed below or abandoned via abort
  let job: JobInfo | undefined;
  try {
    job = await findJob(c, jobId);
    if (job && job.status !== 'concluded') {
      try {
        await concluded;
      } catch (err) {
        if (err instanceof QmpTimeoutError) throw new QmpTimeoutError(`job:${jobId}`, timeoutMs, `status was ${job.status} when waiting began`);
        throw err;
      }
      job = await findJob(c, jobId);
    }
  } finally {
    abort.abort();
  }
  if (!job) throw new QmpError(`QMP job '${jobId}' not found (already dismissed?)`);
  try {
    await jobDismiss(c, jobId);
  } catch (err) {
    if (job.error === undefined) throw err; // the job's own failure is the more useful report
  }
  if (job.error !== undefined) throw new QmpJobError(jobId, job.type, job.error);
  return job;
}

async function findJob(c: QmpClient, jobId: string): Promise<JobInfo | undefined> {
  return (await queryJobs(c)).find((j) => j.id === jobId);
}

export type MigrationCapability = 'events' | 'xbzrle' | 'auto-converge' | 'postcopy-ram';

export async function migrateSetCapabilities(c: QmpClient, caps: Partial<Record<MigrationCapability, boolean>>): Promise<void> {
  const capabilities = Object.entries(caps).map(([capability, state]) => ({ capability, state }));
  await c.execute('migrate-set-capabilities', { capabilities }, quick);
}

export type MigrationParameters = {
  /** Bytes per second. */
  'max-bandwidth'?: number;
  /** Milliseconds. */
  'downtime-limit'?: number;
};

export async function migrateSetParameters(c: QmpClient, params: MigrationParameters): Promise<void> {
  await c.execute('migrate-set-parameters', params, quick);
}

/** Starts an outgoing migration to `uri` and returns at once; follow with waitForMigration(). */
export async function migrate(c: QmpClient, uri: string): Promise<void> {
  await c.execute('migrate', { uri }, quick);
}

/** Makes a QEMU started with `-incoming defer` listen on `uri`; returns once it listens. */
export async function migrateIncoming(c: QmpClient, uri: string): Promise<void> {
  await c.execute('migrate-incoming', { uri }, quick);
}

/**
 * Waits for the MIGRATION event that ends a migration (needs the `events` capability) and throws unless
 * it completed. Subscribe before starting the migration: a short one can end before `migrate` replies.
 * Always settles (or is aborted through `signal`), so a caller that abandons it leaves nothing pending.
 */
export async function waitForMigration(c: QmpClient, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const e = await c.waitForEvent('MIGRATION', {
    timeoutMs: opts.timeoutMs ?? MIGRATION_TIMEOUT_MS,
    signal: opts.signal,
    predicate: (d) => d['status'] === 'completed' || d['status'] === 'failed' || d['status'] === 'cancelled',
  });
  if (e.data['status'] !== 'completed') throw new QmpError(`migration ${String(e.data['status'])}`);
}
