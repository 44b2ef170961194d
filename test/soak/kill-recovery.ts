// The daemon SIGKILLed at a random moment of a long operation, again and again. After each restart: the
// database passes PRAGMA integrity_check, every VM's recorded state matches its QEMU (or its absence), no
// disk layer is left that no VM uses, no VM folder without a VM; at the end every event was delivered to
// the webhook receiver (which stays up while the daemon dies).
import Database from 'better-sqlite3';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { LIVE_STATES } from '../../src/domain/vm-state.js';
import { run } from '../../src/util/run.js';
import { errorMessage } from '../../src/util/errors.js';
import { createGuestVm, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { latestEventId } from '../helpers/events.js';
import { READY_LINE } from '../helpers/guest.js';
import { WebhookCounter, replayIds } from './event-counters.js';
import { qemuPidsOf } from './process-probe.js';

export interface KillOptions { kills: number; memoryMB: number; log?: (line: string) => void; seed?: number }
export interface KillReport { kills: number; byOp: Record<string, number>; events: number; webhookDeliveries: number; problems: string[] }

type Vm = { id: string; name: string; state: string };

/** A small deterministic generator so a failing run can be replayed with its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

export function integrityCheck(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try { return String(db.pragma('integrity_check', { simple: true })); } finally { db.close(); }
}

/** The pid QEMU wrote for a VM, if that process is alive and is this VM's QEMU. */
export function liveQemuOf(dataDir: string, id: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'vms', id, 'qemu.pid'), 'utf8').trim());
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return null;
    return cmd.includes(join(dataDir, 'vms', id)) ? pid : null;
  } catch { return null; }
}

/** Layers in <data>/disks that no VM's disk chain reaches. */
export async function leakedLayers(dataDir: string, problems: string[]): Promise<string[]> {
  const used = new Set<string>();
  for (const id of readdirSync(join(dataDir, 'vms'))) {
    let top: string;
    // The real path, as the daemon hands it to QEMU: backing names resolve against the pool folder.
    try { top = realpathSync(join(dataDir, 'vms', id, 'disk.qcow2')); } catch { continue; }
    used.add(basename(top));
    const r = await run('qemu-img', ['info', '-U', '--backing-chain', '--output=json', top], 30_000);
    if (r.code !== 0) { problems.push(`disk of VM ${id} is unreadable: ${r.stderr.trim()}`); continue; }
    const chain = JSON.parse(r.stdout) as Array<{ filename: string; 'backing-filename'?: string }>;
    for (const layer of chain) { used.add(basename(layer.filename)); if (layer['backing-filename']) used.add(basename(layer['backing-filename'])); }
  }
  let files: string[] = [];
  try { files = readdirSync(join(dataDir, 'disks')); } catch { return []; }
  return files.filter((f) => !used.has(f));
}

/** Checks one restarted daemon; returns what does not hold. */
export async function checkConsistency(d: TestDaemon): Promise<string[]> {
  const problems: string[] = [];
  const ic = integrityCheck(join(d.dataDir, 'grove.db'));
  if (ic !== 'ok') problems.push(`integrity_check: ${ic}`);
  // Recovery may still be settling a VM (a stop in flight): wait for no transitional state first.
  let vms: Vm[] = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    vms = (await d.call('GET', '/vms')).body as Vm[];
    if (!vms.some((v) => ['starting', 'stopping', 'suspending'].includes(v.state)) || Date.now() > deadline) break;
    await delay(250);
  }
  for (const v of vms) {
    const pid = liveQemuOf(d.dataDir, v.id);
    const live = (LIVE_STATES as readonly string[]).includes(v.state);
    if (live && pid === null) problems.push(`${v.name} is recorded ${v.state} but has no QEMU`);
    if (!live && pid !== null) problems.push(`${v.name} is recorded ${v.state} but QEMU ${pid} runs`);
  }
  const known = new Set(vms.map((v) => v.id));
  for (const dir of readdirSync(join(d.dataDir, 'vms'))) if (!known.has(dir)) problems.push(`folder vms/${dir} belongs to no VM`);
  const vmDirs = new Set(readdirSync(join(d.dataDir, 'vms')));
  for (const pid of qemuPidsOf(d.dataDir)) {
    const owner = [...vmDirs].find((id) => liveQemuOf(d.dataDir, id) === pid);
    if (!owner) problems.push(`QEMU ${pid} runs for no VM`);
  }
  for (const f of await leakedLayers(d.dataDir, problems)) problems.push(`disk layer ${f} is used by no VM`);
  return problems;
}

/** Picks an operation that is long and allowed in the VM's state, and the request for it. */
function pick(vms: Vm[], r: () => number, n: number): { op: string; method: string; path: string; body?: unknown; killAfterMs: number } {
  const choose = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const jitter = (max: number): number => Math.floor(r() * max);
  const v = choose(vms);
  const at = `/vms/${v.id}`;
  switch (v.state) {
    case 'stopped': return choose([
      ...[1, 2, 3].map(() => ({ op: 'start', method: 'POST', path: `${at}/start`, body: { waitFor: { console: READY_LINE, timeoutSeconds: 120 } }, killAfterMs: jitter(4000) })),
      { op: 'clone', method: 'POST', path: `${at}/clone`, body: { name: `k-clone-${n}` }, killAfterMs: jitter(400) },
      { op: 'snapshot', method: 'POST', path: `${at}/snapshots`, body: { name: `k-${n}` }, killAfterMs: jitter(400) },
      { op: 'delete', method: 'DELETE', path: at, killAfterMs: jitter(200) },
    ]);
    case 'suspended': return { op: 'resume-from-disk', method: 'POST', path: `${at}/start`, body: {}, killAfterMs: jitter(1500) };
    case 'running': case 'paused': return choose([
      { op: 'snapshot-live', method: 'POST', path: `${at}/snapshots`, body: { name: `k-${n}` }, killAfterMs: jitter(2000) },
      { op: 'stop', method: 'POST', path: `${at}/stop`, body: { timeoutSeconds: 10, force: true }, killAfterMs: jitter(3000) },
      { op: 'suspend', method: 'POST', path: `${at}/suspend`, body: {}, killAfterMs: jitter(2000) },
      { op: 'clone-live', method: 'POST', path: `${at}/clone`, body: { name: `k-clone-${n}` }, killAfterMs: jitter(600) },
      { op: 'delete-force', method: 'DELETE', path: `${at}?force=true`, killAfterMs: jitter(300) },
    ]);
    default: return { op: 'force-stop', method: 'POST', path: `${at}/force-stop`, body: {}, killAfterMs: jitter(200) };
  }
}

export async function runKills(opts: KillOptions): Promise<KillReport> {
  const log = opts.log ?? (() => undefined);
  const r = rng(opts.seed ?? 9);
  const rx = await WebhookCounter.start();
  let d = await startDaemon({ env: { GROVE_WEBHOOK_BACKOFF_MS: '200', GROVE_LOG_LEVEL: 'warn' } });
  const problems: string[] = [];
  const byOp: Record<string, number> = {};
  try {
    const hook = await d.call('POST', '/webhooks', { url: rx.url });
    if (hook.status !== 201) throw new Error(`webhook registration: ${hook.status}`);
    const firstEvent = (await latestEventId(d)) + 1;
    for (let n = 0; n < opts.kills; n++) {
      let vms = (await d.call('GET', '/vms')).body as Vm[];
      // Creating is quick and not what is under test: keep three VMs to work on.
      for (let k = vms.length; k < 3; k++) await createGuestVm(d, `k-${n}-${k}`, { memoryMB: opts.memoryMB });
      vms = (await d.call('GET', '/vms')).body as Vm[];
      const p = pick(vms, r, n);
      byOp[p.op] = (byOp[p.op] ?? 0) + 1;
      // The request is left to die with the daemon: its answer (or the reset) is not what is checked.
      const inflight = d.call(p.method, p.path, p.body).catch(() => undefined);
      await delay(p.killAfterMs);
      await d.stop('SIGKILL');
      await inflight;
      d = await startDaemon({ dataDir: d.dataDir, port: d.port, readyTimeoutMs: 90_000, env: { GROVE_WEBHOOK_BACKOFF_MS: '200', GROVE_LOG_LEVEL: 'info' } });
      const found = await checkConsistency(d);
      log(`kill ${n + 1}/${opts.kills} during ${p.op} after ${p.killAfterMs} ms: ${found.length === 0 ? 'consistent' : found.join('; ')}`);
      problems.push(...found.map((f) => `after kill ${n + 1} (${p.op}): ${f}`));
    }
    const last = await latestEventId(d);
    const expected = await replayIds(d, firstEvent - 1, last);
    const deadline = Date.now() + 120_000;
    while (rx.missing(expected).length > 0 && Date.now() < deadline) await delay(250);
    const missing = rx.missing(expected);
    if (missing.length) problems.push(`webhook deliveries lost for events ${missing.slice(0, 20).join(', ')}`);
    return { kills: opts.kills, byOp, events: expected.length, webhookDeliveries: rx.deliveries, problems };
  } catch (e) {
    problems.push(`kill run aborted: ${errorMessage(e)}\n${d.output().slice(-2000)}`);
    return { kills: opts.kills, byOp, events: 0, webhookDeliveries: rx.deliveries, problems };
  } finally {
    await d.cleanup();
    await rx.close();
  }
}
