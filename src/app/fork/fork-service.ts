import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DomainError, invalid } from '../../domain/errors.js';
import { macAddressOf } from '../../domain/mac.js';
import { SAVED_STATE_VERSION } from '../../domain/saved-state.js';
import { NAME_MAX_LENGTH, USER_NET_FIRST_ADDRESS, type Vm, type VmNetwork } from '../../domain/vm.js';
import type { DiskPool, PinnedLayer } from '../../ports/disk-pool.js';
import type { DiskStore } from '../../ports/disk-store.js';
import type { HostPorts } from '../../ports/host-ports.js';
import type { Logger } from '../../ports/logger.js';
import type { SavedStateFiles, VmFiles } from '../../ports/vm-files.js';
import { errorMessage } from '../../util/errors.js';
import type { AgentService } from '../agent/agent-service.js';
import { runInGuest } from '../agent/guest-exec.js';
import type { DataLayout } from '../layout.js';
import { qemuStep } from '../qemu-step.js';
import type { ExclusiveContext, VmService } from '../vm-service.js';
import type { WaitService } from '../wait/wait-service.js';
import { parseReidentify, REIDENTIFY_SCRIPT, type ReidentifyStep } from './reidentify.js';

export const FORK_LIMITS = { maxCount: 16, defaultAgentTimeoutSeconds: 60 } as const;

export interface ForkInput {
  count: number;
  names?: string[];
  /** The parent stays paused after the capture (it is left as it was when it was paused already). */
  keepParentPaused?: boolean;
  /** Also give each child new SSH host keys. */
  regenerateSshHostKeys?: boolean;
  /** How long each child's agent is waited for before its re-identification is given up (0: not waited for). */
  agentTimeoutSeconds?: number;
}

export interface ForkChild {
  vm: Vm;
  mac: string;
  /** Re-identification steps as the guest reported them; null when it did not happen (see `reidentifyError`). */
  reidentified: ReidentifyStep[] | null;
  reidentifyError: string | null;
}

export interface ForkResult {
  parent: Vm;
  children: ForkChild[];
  /** One capture of RAM + devices, shared by every child. */
  stateBytes: number;
  durations: { captureMs: number; startMs: number; reidentifyMs: number };
}

export interface ForkDeps {
  vms: VmService;
  pool: DiskPool;
  disks: DiskStore;
  files: VmFiles;
  savedStates: SavedStateFiles;
  ports: HostPorts;
  layout: DataLayout;
  agents: AgentService;
  wait: WaitService;
  log: Logger;
}

const REIDENTIFY_TIMEOUT_MS = 60_000;

/**
 * Live fork: N running copies of a running (or paused) VM that go on from its exact RAM, CPU and disk
 * state. The parent is paused once: its disk's top becomes a read-only base under new empty layers (its
 * own and one per child: O(1), as a clone), and its RAM and device state are captured once into a file
 * (QMP migrate, as suspend does). Each child is recorded as a suspended VM holding that capture (one
 * file, hard-linked), and started: the ordinary resume path feeds it into a QEMU started with `-incoming`.
 * Each child has its own MAC and host port forwards, and is re-identified once its agent answers.
 */
export class ForkService {
  constructor(private readonly d: ForkDeps) {}

  async fork(ref: string, input: ForkInput): Promise<ForkResult> {
    const parentRef = this.d.vms.get(ref);
    const names = this.childNames(parentRef.name, input);
    const captured = await this.d.vms.exclusive(parentRef.id, 'fork', (ctx) => this.capture(ctx, names, input));
    const t1 = performance.now();
    // Each child resumes the capture through the ordinary start of a suspended VM; all at once.
    const started = await Promise.allSettled(captured.children.map((c) => this.d.vms.start(c.id)));
    const failed = started.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      const why: unknown = (started[failed] as PromiseRejectedResult).reason;
      throw new DomainError('QEMU_FAILED', `fork child '${captured.children[failed]!.name}' did not resume: ${errorMessage(why)}; the children are kept for inspection`,
        { children: captured.children.map((c) => c.name) });
    }
    const t2 = performance.now();
    const children = await Promise.all(captured.children.map((c) => this.reidentify(c, input)));
    const t3 = performance.now();
    return {
      parent: this.d.vms.get(parentRef.id), children, stateBytes: captured.stateBytes,
      durations: { captureMs: captured.captureMs, startMs: Math.round(t2 - t1), reidentifyMs: Math.round(t3 - t2) },
    };
  }

  private childNames(parent: string, input: ForkInput): string[] {
    if (!Number.isInteger(input.count) || input.count < 1 || input.count > FORK_LIMITS.maxCount) {
      throw invalid(`count must be 1–${FORK_LIMITS.maxCount}`, { field: 'count' });
    }
    if (input.names) {
      if (input.names.length !== input.count) throw invalid(`names has ${input.names.length} entries for count ${input.count}`, { field: 'names' });
      if (new Set(input.names).size !== input.names.length) throw invalid('names must be different from each other', { field: 'names' });
      for (const n of input.names) this.d.vms.assertNameFree(n);
      return input.names;
    }
    const names: string[] = [];
    for (let i = 1; names.length < input.count; i++) {
      const suffix = `-fork-${i}`;
      const name = `${parent.slice(0, NAME_MAX_LENGTH - suffix.length)}${suffix}`;
      if (!this.d.vms.nameTaken(name)) names.push(name);
    }
    return names;
  }

  /** Holding the parent's lock: the one pause, the disk split and the state capture, then the children's records. */
  private async capture(ctx: ExclusiveContext, names: string[], input: ForkInput): Promise<{ children: Vm[]; stateBytes: number; captureMs: number }> {
    const parent = ctx.vm;
    const live = ctx.instance;
    if (!live || (parent.state !== 'running' && parent.state !== 'paused')) {
      throw new DomainError('INVALID_STATE', `VM '${parent.name}' is ${parent.state}: only a running or paused VM can be forked`, { state: parent.state, allowedStates: ['running', 'paused'] });
    }
    for (const n of names) this.d.vms.assertNameFree(n);
    const wasRunning = parent.state === 'running';
    const work = this.d.layout.stagingDir('fork', randomUUID());
    await this.d.files.makeDir(work);
    const stateFile = join(work, 'state.bin');
    const pins: PinnedLayer[] = [];
    const t0 = performance.now();
    let tops: PinnedLayer[] = [];
    try {
      const base = await qemuStep(`disk query of '${parent.name}'`, () => live.diskFile());
      if (!this.d.pool.holds(base)) {
        throw new DomainError('CONFLICT', `VM '${parent.name}' was started by an earlier Grove whose disks were not layered; stop and start it once, then fork it`, { state: parent.state });
      }
      // Frozen first: RAM and disk are then one instant, and the RAM is written in one pass.
      if (wasRunning) await qemuStep(`pause of '${parent.name}'`, () => live.pause());
      try {
        const parentTop = this.d.pool.reserve();
        tops = names.map(() => this.d.pool.reserve());
        pins.push(parentTop, ...tops);
        const { virtualSize } = await this.d.disks.layerFacts(base);
        const backing = this.d.pool.backingName(base);
        await Promise.all([parentTop, ...tops].map((l) => this.d.disks.createOverlay(l.path, backing, virtualSize)));
        await this.d.pool.point(this.d.layout.vmPaths(parent.id).disk, parentTop.path);
        await qemuStep(`moving the disk of '${parent.name}' onto a new layer`, () => live.switchDiskTo(parentTop.path)).catch(async (e: unknown) => {
          if ((await live.diskFile().catch(() => null)) === base) await this.d.pool.point(this.d.layout.vmPaths(parent.id).disk, base);
          throw e;
        });
        await qemuStep(`state capture of '${parent.name}'`, () => live.saveState(stateFile));
      } finally {
        // A completed outgoing migration leaves QEMU in postmigrate with its disk given up (inactivated for a
        // destination); only `cont` takes it back in QEMU 7.2. A parent that is to stay paused is stopped again
        // right after: it runs for the few milliseconds in between.
        await qemuStep(`resume of '${parent.name}'`, () => live.resume());
        if (!wasRunning || input.keepParentPaused) await qemuStep(`pause of '${parent.name}'`, () => live.pause());
      }
      if (wasRunning && input.keepParentPaused) await ctx.setRunState('paused');
      await this.d.pool.freeze(base);
      const captureMs = Math.round(performance.now() - t0);
      const children: Vm[] = [];
      for (const [i, name] of names.entries()) children.push(await this.makeChild(parent, name, tops[i]!, stateFile));
      const stateBytes = (await this.d.savedStates.read(this.d.layout.vmPaths(children[0]!.id)))?.bytes ?? 0;
      return { children, stateBytes, captureMs };
    } catch (e) {
      void this.d.pool.collect().catch(() => undefined);
      throw e;
    } finally {
      for (const p of pins) p.release();
      await this.d.files.removeDir(work);
    }
  }

  private async makeChild(parent: Vm, name: string, top: PinnedLayer, stateFile: string): Promise<Vm> {
    const staging = this.d.layout.stagingDir('clone', randomUUID());
    await this.d.files.makeDir(staging);
    try {
      if (parent.boot.kernel) await this.d.files.copyIn(parent.boot.kernel, join(staging, 'kernel'));
      if (parent.boot.initrd) await this.d.files.copyIn(parent.boot.initrd, join(staging, 'initrd'));
      const stagingPaths = this.d.layout.pathsIn(staging);
      await this.d.savedStates.share(stateFile, stagingPaths);
      await this.d.savedStates.writeMeta(stagingPaths, { version: SAVED_STATE_VERSION, runState: 'running', savedAt: new Date().toISOString() });
      await this.d.pool.point(join(staging, 'disk.qcow2'), top.path);
      return await this.d.vms.importStaged({
        name, staging, state: 'suspended',
        spec: {
          cpu: parent.cpu, memoryMB: parent.memoryMB, diskGB: parent.diskGB, network: await this.network(parent.network), distro: parent.distro,
          ...(parent.boot.cmdline !== undefined ? { cmdline: parent.boot.cmdline } : {}),
        },
        hasKernel: parent.boot.kernel !== undefined, hasInitrd: parent.boot.initrd !== undefined,
        within: () => undefined,
        origin: { forkedFrom: { id: parent.id, name: parent.name }, sourceState: parent.state },
        // The seed must be there (the device set has to match the parent's), with the child's own identity.
        cloudInit: this.d.vms.cloudInitConfig(parent.id),
      });
    } catch (e) {
      await this.d.files.removeDir(staging);
      throw e;
    }
  }

  /** The parent's forwards, each to a free host port of the child's own (guest ports as they were). */
  private async network(parent: VmNetwork): Promise<VmNetwork> {
    const taken = new Set<number>();
    for (const vm of this.d.vms.list()) for (const f of vm.network.portForwards) taken.add(f.host);
    const portForwards = [];
    for (const f of parent.portForwards) {
      const host = await this.d.ports.pickFree(taken);
      taken.add(host);
      portForwards.push({ ...f, host });
    }
    return { ...parent, portForwards };
  }

  /**
   * Aims the child's host port forwards at the address its guest holds after the DHCP step, when that is
   * not the one QEMU aimed them at (see REIDENTIFY_ITEMS); null for a VM without forwards.
   */
  private async retargetForwards(id: string): Promise<ReidentifyStep | null> {
    const forwards = this.d.vms.get(id).network.portForwards;
    if (forwards.length === 0) return null;
    try {
      const { ip } = await this.d.agents.ip(id);
      if (ip === null) return { item: 'port-forwards', status: 'skipped', detail: 'the guest reports no address' };
      if (ip === USER_NET_FIRST_ADDRESS) return { item: 'port-forwards', status: 'ok', detail: `${ip} (unchanged)` };
      await this.d.vms.exclusive(id, 'fork', async (ctx) => {
        if (!ctx.instance) throw new DomainError('INVALID_STATE', `VM '${ctx.vm.name}' is ${ctx.vm.state}`);
        await ctx.instance.retargetPortForwards(forwards, ip);
      });
      return { item: 'port-forwards', status: 'ok', detail: `${forwards.map((f) => `${f.protocol} ${f.host}`).join(', ')} → ${ip}` };
    } catch (e) {
      return { item: 'port-forwards', status: 'failed', detail: errorMessage(e) };
    }
  }

  private async reidentify(child: Vm, input: ForkInput): Promise<ForkChild> {
    const mac = macAddressOf(child.id);
    const base = { mac, reidentified: null };
    const waitS = input.agentTimeoutSeconds ?? FORK_LIMITS.defaultAgentTimeoutSeconds;
    if (waitS === 0) return { vm: this.d.vms.get(child.id), ...base, reidentifyError: 'not asked (agentTimeoutSeconds 0)' };
    try {
      await this.d.wait.wait(child.id, { until: [{ agent: true }], timeoutSeconds: waitS });
      const steps = await this.d.agents.use(child.id, 're-identifying the fork', async (agent) => {
        const r = await runInGuest(agent, ['/bin/sh', '-c', REIDENTIFY_SCRIPT, 'grove-reidentify', child.name, mac, input.regenerateSshHostKeys ? '1' : '0', randomBytes(16).toString('hex')],
          { stdin: randomBytes(64), timeoutMs: REIDENTIFY_TIMEOUT_MS, maxOutputBytes: 16 * 1024 });
        return parseReidentify(r.stdout.toString('utf8'));
      });
      const forwards = await this.retargetForwards(child.id);
      return { vm: this.d.vms.get(child.id), ...base, reidentified: forwards ? [...steps, forwards] : steps, reidentifyError: null };
    } catch (e) {
      this.d.log.warn({ vm: child.name, err: errorMessage(e) }, 'fork child not re-identified');
      return { vm: this.d.vms.get(child.id), ...base, reidentifyError: errorMessage(e) };
    }
  }
}
