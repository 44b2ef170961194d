import { randomBytes } from 'node:crypto';
import type { CloudInitInput } from '../../domain/cloud-init.js';
import { DomainError } from '../../domain/errors.js';
import { NAME_MAX_LENGTH, type Vm, type VmNetworkInput } from '../../domain/vm.js';
import type { VmService } from '../vm-service.js';
import type { WaitOutcome, WaitRequest, WaitService } from '../wait/wait-service.js';
import type { GuestReadiness, ReadinessCheck, Ready } from './guest-readiness.js';

export interface LaunchInput {
  distro: string;
  name?: string;
  cpu?: number;
  memoryMB?: number;
  diskGB?: number;
  network?: VmNetworkInput;
  cloudInit?: CloudInitInput;
  autostart?: boolean;
  /** What to wait for once QEMU runs; `none`: answer as soon as it started; `{ until }`: any wait conditions. */
  waitFor?: ReadinessCheck | 'none' | Omit<WaitRequest, 'timeoutSeconds'>;
  /** Bounds the readiness wait after the start (a download before it is not counted). */
  timeoutSeconds?: number;
}

export interface LaunchResult {
  vm: Vm;
  /** local: the image was here; downloaded: this launch waited for its download. */
  image: 'local' | 'downloaded';
  ready: Ready | null;
  /** With `waitFor: { until }`: the conditions that matched (console ones from the first byte of the boot). */
  waited?: WaitOutcome;
  /** Where the time went: waiting for the image, starting QEMU, waiting for readiness. */
  durations: { provisionMs: number; startMs: number; readyMs: number | null };
}

export const LAUNCH_DEFAULTS = { waitFor: 'ssh' as const, timeoutSeconds: 300 };

/** Tries for a free default name before giving up (2 random bytes: 65536 names per distro). */
const NAME_TRIES = 8;

/**
 * One call from a distro id to a guest that can be logged into: create (with cloud-init and an SSH
 * forward, as every distro VM), wait for the image when it is downloading, start, wait until ready.
 * Each step is the VM service's own; a failure leaves the VM as that step left it (error after a failed
 * download, running after a readiness timeout) for the caller to look at or delete.
 */
export class LaunchService {
  constructor(private readonly d: { vms: VmService; readiness: GuestReadiness; wait: WaitService }) {}

  async launch(input: LaunchInput): Promise<LaunchResult> {
    const name = input.name ?? this.defaultName(input.distro);
    const timeoutSeconds = input.timeoutSeconds ?? LAUNCH_DEFAULTS.timeoutSeconds;
    const conditions = typeof input.waitFor === 'object' ? { ...input.waitFor, timeoutSeconds } : null;
    // Bad conditions are the caller's mistake: refused before anything is created.
    if (conditions) this.d.wait.check(conditions);
    const t0 = performance.now();
    let vm = await this.d.vms.create({
      name, distro: input.distro, cloudInit: input.cloudInit ?? {},
      ...(input.cpu !== undefined ? { cpu: input.cpu } : {}), ...(input.memoryMB !== undefined ? { memoryMB: input.memoryMB } : {}),
      ...(input.diskGB !== undefined ? { diskGB: input.diskGB } : {}), ...(input.network !== undefined ? { network: input.network } : {}),
      ...(input.autostart !== undefined ? { autostart: input.autostart } : {}),
    });
    const image = vm.state === 'provisioning' ? 'downloaded' : 'local';
    vm = await this.d.vms.provisioned(vm.id);
    const t1 = performance.now();
    if (conditions) {
      const r = await this.d.wait.start(vm.id, conditions);
      const readyMs = Math.round(performance.now() - t1);
      return { vm: r.vm, image, ready: null, waited: r.waited, durations: { provisionMs: Math.round(t1 - t0), startMs: readyMs - r.waited.elapsedMs, readyMs } };
    }
    vm = (await this.d.vms.start(vm.id)).vm;
    const t2 = performance.now();
    const check = typeof input.waitFor === 'string' ? input.waitFor : LAUNCH_DEFAULTS.waitFor;
    const ready = check === 'none' ? null : await this.d.readiness.wait(vm.id, check, timeoutSeconds * 1000);
    return {
      vm: this.d.vms.get(vm.id), image, ready,
      durations: { provisionMs: Math.round(t1 - t0), startMs: Math.round(t2 - t1), readyMs: ready ? Math.round(performance.now() - t2) : null },
    };
  }

  /** `<distro>-<4 hex digits>`, e.g. `debian-12-3fa9`, shortened to fit the name limit. */
  private defaultName(distro: string): string {
    for (let i = 0; i < NAME_TRIES; i++) {
      const name = `${distro.slice(0, NAME_MAX_LENGTH - 5)}-${randomBytes(2).toString('hex')}`;
      if (!this.d.vms.nameTaken(name)) return name;
    }
    throw new DomainError('CONFLICT', `no free default name for '${distro}' after ${NAME_TRIES} tries; give a name`, { field: 'name' });
  }
}
