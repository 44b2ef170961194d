import { randomFillSync } from 'node:crypto';
import { open, readdir, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Vm } from '../src/domain/vm.js';
import { run } from '../src/util/run.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { fmtMs, fmtRatio, median, resultLine, timed, type BenchResult, type Target } from './lib/stats.js';

export interface CloneOptions {
  /** Measured clones per side, alternating (small, big, big, small, ...). */
  runs: number;
  /** Unmeasured clone pairs first. */
  warmup: number;
  /** Measured full copies of the big disk (the reference of the second result). */
  copies: number;
  /** Measured clones per side with the sources running. */
  liveRuns: number;
}

export const CLONE_DEFAULTS: CloneOptions = { runs: 15, warmup: 1, copies: 3, liveRuns: 9 };

const TARGET: Target = { op: '<=', value: 1.2 };
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const WRITE_MB = 200;
const SMALL_GB = 1;
const BIG_GB = 16;
/** A clone's own top layer is a fresh overlay: qcow2 header + tables, far below this. */
const OVERLAY_MAX = 8 * MiB;
const COPY_TIMEOUT_MS = 10 * 60_000;

type Side = 'small' | 'big';

interface ImageInfo { filename: string; 'virtual-size': number; 'actual-size': number; 'backing-filename'?: string }

/**
 * (h) clone of a stopped VM: POST /vms/:id/clone {name} (201 with the new VM), on a VM whose disk is
 * 1 GiB virtual and on one whose disk is 16 GiB virtual, both holding the same 200 MiB of random data
 * (written into the stopped VM's qcow2 with `qemu-img convert -n` from one random raw file, so the
 * clusters are really allocated). Each clone is deleted again (not measured); the sides alternate.
 *   result 1: median clone time of the 16 GiB VM / of the 1 GiB VM. An O(1) clone does not depend on the
 *             virtual size (nor on the data written): target <= 1.2.
 *   result 2: median clone time of the 16 GiB VM / a full copy of its disk, `qemu-img convert -O qcow2`
 *             (what copying a qcow2 means in practice, and how the daemon copies an image; its default
 *             cache mode does not flush the copy: a flushed one, `-t writeback`, is printed for
 *             information), timed before any clone, into the same data dir. No target: it shows how
 *             much a clone saves at 200 MiB written, and a copy grows with the data while a clone does not.
 * Both sources run with warm page caches (the data was just written); nothing is dropped.
 */
export async function benchClone(o: CloneOptions = CLONE_DEFAULTS): Promise<BenchResult[]> {
  const bd = await startBenchDaemon('clone');
  try {
    const qemuImg = bd.cfg.qemuImgBinary;
    const small = await bd.createGuestVm('bench-clone-small', { diskGB: SMALL_GB });
    const big = await bd.createGuestVm('bench-clone-big', { diskGB: BIG_GB });
    const vms: Record<Side, Vm> = { small, big };

    // The same random bytes go into both disks.
    const randomRaw = join(bd.dataDir, 'random.raw');
    await writeRandomFile(randomRaw, WRITE_MB * MiB);
    const written: Record<Side, ImageInfo> = {} as Record<Side, ImageInfo>;
    for (const side of ['small', 'big'] as const) {
      const disk = await realpath(diskPath(bd, vms[side].id));
      await qemuImgRun(qemuImg, ['convert', '-q', '-n', '-f', 'raw', '-O', 'qcow2', randomRaw, disk]);
      const chain = await backingChain(qemuImg, disk);
      const top = chain[0]!;
      if (chain.length !== 1) throw new Error(`${side} disk has a backing chain before any clone: ${chain.map((i) => i.filename).join(' -> ')}`);
      if (top['actual-size'] < WRITE_MB * MiB) throw new Error(`${side} disk holds ${(top['actual-size'] / MiB).toFixed(0)} MiB after writing ${WRITE_MB} MiB`);
      const wantGB = side === 'small' ? SMALL_GB : BIG_GB;
      if (top['virtual-size'] !== wantGB * GiB) throw new Error(`${side} disk is ${top['virtual-size']} bytes virtual, expected ${wantGB} GiB`);
      written[side] = top;
    }
    await rm(randomRaw, { force: true });

    // Reference, before any clone: the big VM's disk is still one standalone qcow2 file.
    const bigDisk = await realpath(diskPath(bd, big.id));
    const copies: number[] = [];
    const flushedCopies: number[] = [];
    let copySize = 0;
    const fullCopy = async (dst: string, extra: string[]): Promise<number> => {
      try {
        const ms = await timed(() => qemuImgRun(qemuImg, ['convert', '-q', ...extra, '-f', 'qcow2', '-O', 'qcow2', bigDisk, dst], COPY_TIMEOUT_MS));
        const [c] = await backingChain(qemuImg, dst);
        if (c!['virtual-size'] !== BIG_GB * GiB || c!['actual-size'] < WRITE_MB * MiB) {
          throw new Error(`full copy is ${c!['virtual-size']} bytes virtual, ${c!['actual-size']} allocated`);
        }
        copySize = c!['actual-size'];
        return ms;
      } finally {
        await rm(dst, { force: true });
      }
    };
    for (let i = 0; i < o.copies; i++) {
      // qemu-img convert's default cache mode for the target is `unsafe` (no flush): the cheapest copy,
      // and the way the daemon itself copies an image (QemuImg.createFrom). `-t writeback` also flushes it.
      copies.push(await fullCopy(join(bd.dataDir, `full-copy-${i}.qcow2`), []));
      flushedCopies.push(await fullCopy(join(bd.dataDir, `full-copy-${i}-flushed.qcow2`), ['-t', 'writeback']));
    }

    let seq = 0;
    const times: Record<Side, number[]> = { small: [], big: [] };
    let overlayMax = 0;
    const cloneOnce = async (side: Side, record: boolean): Promise<void> => {
      const src = vms[side];
      const name = `bench-clone-${side}-${++seq}`;
      let clone: any;
      const ms = await timed(async () => { clone = await bd.client.ok('POST', `/vms/${src.id}/clone`, { name }, 201); });
      // Not measured: the clone is what was asked for, and it got no copy of the data.
      if (clone.name !== name || clone.state !== 'stopped' || clone.diskGB !== src.diskGB) {
        throw new Error(`clone of ${side} answered ${JSON.stringify(clone)}`);
      }
      const chain = await backingChain(qemuImg, await realpath(diskPath(bd, clone.id)));
      const top = chain[0]!;
      if (top['virtual-size'] !== src.diskGB * GiB) throw new Error(`clone of ${side} is ${top['virtual-size']} bytes virtual`);
      if (top['actual-size'] > OVERLAY_MAX) throw new Error(`clone of ${side} has ${(top['actual-size'] / MiB).toFixed(1)} MiB in its own layer: a copy, not an overlay`);
      if (!chain.some((i) => i['actual-size'] >= WRITE_MB * MiB)) throw new Error(`clone of ${side} has no layer holding the ${WRITE_MB} MiB written`);
      overlayMax = Math.max(overlayMax, top['actual-size']);
      const d = await bd.client.call('DELETE', `/vms/${clone.id}`);
      if (d.status !== 204) throw new Error(`delete of the clone: HTTP ${d.status} ${JSON.stringify(d.body)}`);
      if (record) times[side].push(ms);
    };

    for (let i = 0; i < o.warmup; i++) { await cloneOnce('small', false); await cloneOnce('big', false); }
    for (let i = 0; i < o.runs; i++) {
      const order: Side[] = i % 2 === 0 ? ['small', 'big'] : ['big', 'small'];
      for (const s of order) await cloneOnce(s, true);
    }
    const layers: Record<Side, number> = {
      small: (await backingChain(qemuImg, await realpath(diskPath(bd, small.id)))).length,
      big: (await backingChain(qemuImg, await realpath(diskPath(bd, big.id)))).length,
    };

    // The same with both sources running: each clone moves the source onto a new layer live
    // (blockdev-add + blockdev-snapshot) and makes the clone's layer over the frozen one.
    for (const side of ['small', 'big'] as const) {
      await bd.startReady(vms[side].id, 120);
    }
    const liveTimes: Record<Side, number[]> = { small: [], big: [] };
    const liveOnce = async (side: Side, record: boolean): Promise<void> => {
      const src = vms[side];
      const name = `bench-live-${side}-${++seq}`;
      let clone: any;
      const ms = await timed(async () => { clone = await bd.client.ok('POST', `/vms/${src.id}/clone`, { name }, 201); });
      const state = ((await bd.client.ok('GET', `/vms/${src.id}`, undefined, 200)) as Vm).state;
      if (clone.name !== name || state !== 'running') throw new Error(`live clone of ${side}: clone ${JSON.stringify(clone)}, source ${state}`);
      const d = await bd.client.call('DELETE', `/vms/${clone.id}`);
      if (d.status !== 204) throw new Error(`delete of the clone: HTTP ${d.status} ${JSON.stringify(d.body)}`);
      if (record) liveTimes[side].push(ms);
    };
    await liveOnce('small', false);
    await liveOnce('big', false);
    for (let i = 0; i < o.liveRuns; i++) {
      const order: Side[] = i % 2 === 0 ? ['small', 'big'] : ['big', 'small'];
      for (const s of order) await liveOnce(s, true);
    }
    for (const side of ['small', 'big'] as const) await bd.client.ok('POST', `/vms/${vms[side].id}/force-stop`, {}, 200);

    // The sources go too; whatever their chains left in the disk pool is reported (it should be nothing).
    for (const vm of [small, big]) {
      const d = await bd.client.call('DELETE', `/vms/${vm.id}`);
      if (d.status !== 204) throw new Error(`delete of ${vm.name}: HTTP ${d.status} ${JSON.stringify(d.body)}`);
    }
    const leftInPool = (await readdir(join(bd.dataDir, 'disks')).catch(() => [] as string[])).length;

    const s = median(times.small);
    const b = median(times.big);
    const c = median(copies);
    const paired = median(times.big.map((x, i) => x / times.small[i]!));
    const list = (a: number[]) => a.map(fmtMs).join(', ');
    const mb = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

    const vsSize = resultLine(`clone ${BIG_GB} GiB vs ${SMALL_GB} GiB (${WRITE_MB} MiB written)`,
      `clone ${BIG_GB} GiB median ${fmtMs(b)}`, `clone ${SMALL_GB} GiB median ${fmtMs(s)}`, b / s, TARGET);
    vsSize.details.push(
      `  ${o.runs} clones per side after ${o.warmup} warm-up pair, alternating; ratio of medians; source stopped; each clone deleted after (not measured)`,
      `  disks after writing: ${SMALL_GB} GiB virtual / ${mb(written.small['actual-size'])} allocated, ${BIG_GB} GiB virtual / ${mb(written.big['actual-size'])} allocated (same random data, qemu-img convert -n)`,
      `  ${SMALL_GB} GiB: ${list(times.small)}; ${BIG_GB} GiB: ${list(times.big)}`,
      `  info: median of the per-round ratios big/small (paired, back to back): ${fmtRatio(paired)}`,
      `  info: a clone's own layer held at most ${(overlayMax / MiB).toFixed(2)} MiB; an unwritten stopped source shares its base, so after all `
        + `stopped clones its chain had ${layers.small} (${SMALL_GB} GiB) and ${layers.big} (${BIG_GB} GiB) layers; files left in disks/ after deleting every VM: ${leftInPool}`,
    );
    const vsCopy = resultLine(`clone ${BIG_GB} GiB vs full copy`, `clone median ${fmtMs(b)}`, `qemu-img convert -O qcow2 median ${fmtMs(c)}`, b / c, null);
    vsCopy.details.push(
      `  full copy: ${o.copies} runs of qemu-img convert -O qcow2 of the ${BIG_GB} GiB disk (${mb(written.big['actual-size'])} allocated) into the data dir, before any clone; copy held ${mb(copySize)}`,
      `  copies: ${list(copies)}; no target: a full copy grows with the data written, the clone should not`,
      `  info: the same copy flushed to disk (qemu-img convert -t writeback): ${list(flushedCopies)}, median ${fmtMs(median(flushedCopies))}; clone/flushed copy ${fmtRatio(b / median(flushedCopies))}`,
    );
    const ls = median(liveTimes.small);
    const lb = median(liveTimes.big);
    const live = resultLine(`clone of a running VM, ${BIG_GB} GiB vs ${SMALL_GB} GiB`,
      `clone ${BIG_GB} GiB median ${fmtMs(lb)}`, `clone ${SMALL_GB} GiB median ${fmtMs(ls)}`, lb / ls, TARGET);
    live.details.push(
      `  ${o.liveRuns} clones per side of the running guests after 1 warm-up pair, alternating; each adds a layer to the source's chain`,
      `  ${SMALL_GB} GiB: ${list(liveTimes.small)}; ${BIG_GB} GiB: ${list(liveTimes.big)}`,
    );
    return [vsSize, vsCopy, live];
  } finally {
    await bd.close();
  }
}

/** The VM's disk as QEMU opens it: a file, or (once cloned) a symlink to its top layer. */
function diskPath(bd: BenchDaemon, id: string): string {
  return join(bd.dataDir, 'vms', id, 'disk.qcow2');
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const f = await open(path, 'w');
  try {
    const buf = Buffer.alloc(MiB);
    for (let done = 0; done < bytes; done += buf.length) {
      randomFillSync(buf);
      await f.write(buf, 0, Math.min(buf.length, bytes - done));
    }
  } finally {
    await f.close();
  }
}

async function qemuImgRun(qemuImg: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await run(qemuImg, args, timeoutMs);
  if (r.code !== 0) throw new Error(`qemu-img ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/**
 * Every layer of a qcow2 chain, top first (`qemu-img info --backing-chain`; -U: read only the headers).
 * Callers pass the real path: a relative backing name is resolved from the directory of the name given.
 */
async function backingChain(qemuImg: string, path: string): Promise<ImageInfo[]> {
  const out = await qemuImgRun(qemuImg, ['info', '-U', '--backing-chain', '--output=json', path]);
  return JSON.parse(out) as ImageInfo[];
}
