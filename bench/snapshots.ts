import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Vm } from '../src/domain/vm.js';
import { SnapshotService } from '../src/app/snapshot-service.js';
import { QemuInstance } from '../src/hypervisor/qemu/instance.js';
import { QmpClient } from '../src/hypervisor/qemu/qmp/index.js';
import * as qmpc from '../src/hypervisor/qemu/qmp/commands.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { FILL_MB, bootAndFillPair, cpuPercent, daemonQemuPid } from './lib/guest-state.js';
import { Probe } from './lib/probe.js';
import { RawQmp } from './lib/raw-qmp.js';
import { fmtMs, fmtRatio, median, resultLine, timed, type BenchResult, type Target } from './lib/stats.js';

export interface SnapshotsOptions {
  /** Measured create + restore pairs per side; the order of the sides alternates per round. */
  runs: number;
  /** Unmeasured rounds first. */
  warmup: number;
  /** Also run the QmpClient side (attribution; default true). */
  qmpclient?: boolean;
}

export const SNAPSHOTS_DEFAULTS: SnapshotsOptions = { runs: 19, warmup: 1 };

const TARGET: Target = { op: '<=', value: 1.1 };
const DISK = 'disk0';

type Side = 'grove' | 'raw' | 'qmpclient';

/**
 * (f) live snapshot create and restore of a 256 MiB guest holding 64 MiB of random data in tmpfs.
 *   grove: POST /vms/:id/snapshots {name} (201 once the snapshot exists), then
 *          POST /vms/:id/snapshots/:sid/restore; DELETE between rounds (not measured).
 *   raw:   `snapshot-save` (vmstate + devices = the disk node, as the daemon sends), wait for the job's
 *          JOB_STATUS_CHANGE `concluded` event, `job-dismiss`; the same with `snapshot-load`; sent by a
 *          minimal client to a QEMU launched by hand with the daemon's argv (+ one extra QMP monitor).
 *          `snapshot-delete` job between rounds (not measured).
 *   info:  the same jobs through Grove's own QmpClient + waitForJob() on the extra monitor.
 * Two results: snapshot-create and snapshot-restore, each a ratio of medians.
 */
export async function benchSnapshots(o: SnapshotsOptions = SNAPSHOTS_DEFAULTS): Promise<BenchResult[]> {
  const bd = await startBenchDaemon('snap');
  const probe = new Probe();
  try {
    const vm = (await bd.createGuestVm('bench-snap')) as Vm;
    const tBoot = Date.now();
    const rawVm = await bootAndFillPair(bd, vm, { extraQmp: true });
    const bootS = (Date.now() - tBoot) / 1000;
    const idle = await cpuPercent([await daemonQemuPid(bd, vm.id), rawVm.pid], 1000);
    const raw = await RawQmp.connect(rawVm.spec.paths.qmpSocket);
    const gq = await QmpClient.connect(rawVm.extraQmp!);
    const closeClients = onCleanup('QMP clients', async () => { raw.close(); await gq.close(); });
    probe.wrap(QemuInstance.prototype, 'snapshotSave', 'instance.snapshotSave');
    probe.wrap(QemuInstance.prototype, 'snapshotLoad', 'instance.snapshotLoad');
    probe.wrap(QemuInstance.prototype, 'resume', 'instance.resume');
    probe.wrap(SnapshotService.prototype, 'create', 'service.create');
    probe.wrap(SnapshotService.prototype, 'restore', 'service.restore');

    let seq = 0;
    const rawJob = async (cmd: 'snapshot-save' | 'snapshot-load', tag: string): Promise<void> => {
      const jobId = `bench-${cmd}-${++seq}`;
      const concluded = raw.waitEvent((e) => e.event === 'JOB_STATUS_CHANGE' && e.data['id'] === jobId && e.data['status'] === 'concluded');
      await raw.execute(cmd, { 'job-id': jobId, tag, vmstate: DISK, devices: [DISK] });
      await concluded;
      await raw.execute('job-dismiss', { id: jobId });
    };
    const rawDelete = async (tag: string): Promise<void> => {
      const jobId = `bench-del-${++seq}`;
      const concluded = raw.waitEvent((e) => e.event === 'JOB_STATUS_CHANGE' && e.data['id'] === jobId && e.data['status'] === 'concluded');
      await raw.execute('snapshot-delete', { 'job-id': jobId, tag, devices: [DISK] });
      await concluded;
      await raw.execute('job-dismiss', { id: jobId });
    };
    /** Not measured: the tag must be on the raw disk after a save (a failed job still concludes). */
    let vmStateBytes = 0;
    let groveStateBytes = 0;
    const rawTags = async (): Promise<string[]> => {
      const block = (await raw.execute('query-block')) as qmpc.BlockInfo[];
      const snaps = block.find((b) => b.inserted?.['node-name'] === DISK)?.inserted?.image?.snapshots ?? [];
      vmStateBytes = snaps.at(-1)?.['vm-state-size'] ?? 0;
      return snaps.map((s) => s.name);
    };

    const create: Record<Side, number[]> = { grove: [], raw: [], qmpclient: [] };
    const restore: Record<Side, number[]> = { grove: [], raw: [], qmpclient: [] };
    const round: Record<Side, (record: boolean) => Promise<void>> = {
      grove: async (record) => {
        const name = `bench-${++seq}`;
        let snap: any;
        const c = await timed(async () => { snap = await bd.client.ok('POST', `/vms/${vm.id}/snapshots`, { name }, 201); });
        if (snap.kind !== 'live') throw new Error(`snapshot is ${snap.kind}, not live`);
        if (groveStateBytes === 0) groveStateBytes = diskSnapshots(join(bd.dataDir, 'vms', vm.id, 'disk.qcow2')).at(-1)?.['vm-state-size'] ?? -1;
        let res: any;
        const r = await timed(async () => { res = await bd.client.ok('POST', `/vms/${vm.id}/snapshots/${snap.id}/restore`, {}); });
        if (res.vm.state !== 'running') throw new Error(`VM is ${res.vm.state} after restore`);
        await bd.client.call('DELETE', `/vms/${vm.id}/snapshots/${snap.id}`).then((d) => { if (d.status !== 204) throw new Error(`delete: HTTP ${d.status}`); });
        if (record) { create.grove.push(c); restore.grove.push(r); }
      },
      raw: async (record) => {
        const tag = `bench-raw-${++seq}`;
        const c = await timed(() => rawJob('snapshot-save', tag));
        if (!(await rawTags()).includes(tag)) throw new Error(`raw snapshot-save of ${tag} left no snapshot`);
        const r = await timed(() => rawJob('snapshot-load', tag));
        const st = (await raw.execute('query-status')) as { status: string };
        if (st.status !== 'running') throw new Error(`raw VM is ${st.status} after snapshot-load`);
        await rawDelete(tag);
        if (record) { create.raw.push(c); restore.raw.push(r); }
      },
      qmpclient: async (record) => {
        const tag = `bench-qc-${++seq}`;
        const c = await timed(async () => {
          await qmpc.snapshotSave(gq, { jobId: `qc-save-${seq}`, tag, vmstate: DISK, devices: [DISK] });
          await qmpc.waitForJob(gq, `qc-save-${seq}`);
        });
        const r = await timed(async () => {
          await qmpc.snapshotLoad(gq, { jobId: `qc-load-${seq}`, tag, vmstate: DISK, devices: [DISK] });
          await qmpc.waitForJob(gq, `qc-load-${seq}`);
        });
        await qmpc.snapshotDelete(gq, { jobId: `qc-del-${seq}`, tag, devices: [DISK] });
        await qmpc.waitForJob(gq, `qc-del-${seq}`);
        if (record) { create.qmpclient.push(c); restore.qmpclient.push(r); }
      },
    };
    // grove and raw swap first/second place every round, so each is preceded equally often by the other
    // and by the QmpClient side (which always comes last: it is only an attribution figure).
    const withQc = o.qmpclient ?? true;
    const order = (i: number): Side[] => [...(i % 2 === 0 ? ['grove', 'raw'] as const : ['raw', 'grove'] as const), ...(withQc ? ['qmpclient'] as const : [])];
    probe.enabled = false;
    for (let i = 0; i < o.warmup; i++) for (const s of order(0)) await round[s](false);
    probe.enabled = true;
    for (let i = 0; i < o.runs; i++) {
      for (const s of order(i)) await round[s](true);
    }
    // Not measured: every snapshot made must be gone from both disks again (qemu-img -U reads a disk in use).
    for (const disk of [join(bd.dataDir, 'vms', vm.id, 'disk.qcow2'), rawVm.spec.paths.disk]) {
      const left = diskSnapshots(disk).length;
      if (left !== 0) throw new Error(`${disk} holds ${left} snapshots after the rounds (expected 0)`);
    }
    await closeClients();
    await rawVm.dispose();

    const list = (a: number[]) => a.map(fmtMs).join(', ');
    const mk = (name: string, key: 'create' | 'restore', rawWhat: string, instKey: string): BenchResult => {
      const s = key === 'create' ? create : restore;
      const g = median(s.grove);
      const r = median(s.raw);
      const svc = median(probe.samples.get(`service.${key}`) ?? []);
      const inst = median(probe.samples.get(`instance.${instKey}`) ?? []);
      // Each round's grove and raw samples were taken back to back: their ratio cancels slow drifts in load.
      const paired = median(s.grove.map((x, i) => x / s.raw[i]!));
      const res = resultLine(name, `median ${fmtMs(g)}`, `raw ${rawWhat} median ${fmtMs(r)}`, g / r, TARGET);
      res.details.push(
        `  ${o.runs} per side after ${o.warmup} warm-up, grove and raw alternate first/second each round (QmpClient third); ratio of medians; guest 256 MiB with ${FILL_MB} MiB random in tmpfs, vm-state-size ${(groveStateBytes / 2 ** 20).toFixed(0)} MiB (grove) / ${(vmStateBytes / 2 ** 20).toFixed(0)} MiB (raw)`,
        `  grove: ${list(s.grove)}; raw: ${list(s.raw)}`,
        `  info: same job via Grove's QmpClient + waitForJob(): median ${fmtMs(median(s.qmpclient))} (${fmtRatio(median(s.qmpclient) / r)}x raw)`,
        `  info: median of the per-round ratios grove/raw (paired, back to back): ${fmtRatio(paired)}`,
        `  info: inside the daemon (probed medians): QemuInstance.${instKey}() ${fmtMs(inst)}, SnapshotService.${key}() ${fmtMs(svc)}; `
          + `so service (lock, SQLite, events) ~${fmtMs(svc - inst)}, HTTP + route ~${fmtMs(g - svc)}`,
      );
      if (key === 'restore') {
        const c = probe.samples.get('instance.resume') ?? [];
        res.details.push(`  info: of the service's share, the \`cont\` that setRunState('running') sends after snapshot-load (which already resumed the guest): `
          + `${c.length} calls, median ${fmtMs(median(c))}`);
      }
      return res;
    };
    const out = [
      mk('snapshot-create', 'create', 'snapshot-save job + dismiss', 'snapshotSave'),
      mk('snapshot-restore', 'restore', 'snapshot-load job + dismiss', 'snapshotLoad'),
    ];
    out[0]!.details.push(`  (both guests booted and filled in ${bootS.toFixed(1)}s, not measured; idle CPU over 1 s after that: daemon's QEMU ${idle[0]!.toFixed(0)}%, raw QEMU ${idle[1]!.toFixed(0)}% of a core)`);
    return out;
  } finally {
    probe.restore();
    await bd.close();
  }
}

/** Internal snapshots of a qcow2 file, read with `qemu-img info -U` (allowed while QEMU has it open). */
function diskSnapshots(disk: string): { name: string; 'vm-state-size': number }[] {
  const r = spawnSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img info ${disk}: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as { snapshots?: { name: string; 'vm-state-size': number }[] }).snapshots ?? [];
}
