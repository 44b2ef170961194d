import { access, constants } from 'node:fs/promises';
import type { Accelerator } from '../../domain/vm.js';
import { errorMessage } from '../../util/errors.js';
import { probeAccelerator, probedModel } from './accel-probe.js';

export type AcceleratorChoice = Accelerator | 'auto';

export interface AcceleratorDecision {
  accelerator: Accelerator;
  /** Shown as `acceleratorReason` in GET /host. */
  why: string;
  /** `auto` wanted KVM and could not have it. */
  fellBack: boolean;
  /** How long the KVM probe took, when one ran. */
  probeMs: number | null;
}

export interface AcceleratorHost {
  qemuBinary: string;
  /** The KVM device; tests name one that is missing. */
  kvmDevice?: string;
  probeTimeoutMs?: number;
}

/** `--accel kvm` on a host where KVM cannot run a guest: the daemon does not start. */
export class AcceleratorError extends Error {}

/**
 * `/dev/kvm` opening and QEMU reporting KVM enabled are not enough: nested hosts pass both and then cannot
 * run a guest (`-cpu host` dies with "failed to set MSR 0x10a", other models hang in the firmware). So KVM
 * is chosen only once a tiny guest has booted under it with the machine and CPU model the VMs get.
 */
export async function chooseAccelerator(choice: AcceleratorChoice, host: AcceleratorHost): Promise<AcceleratorDecision> {
  if (choice === 'tcg') return { accelerator: 'tcg', why: 'configured (tcg)', fellBack: false, probeMs: null };
  const kvmDevice = host.kvmDevice ?? '/dev/kvm';
  const refuse = (problem: string): never => {
    throw new AcceleratorError(`accelerator kvm was asked for, but ${problem}; use --accel auto (or tcg) to run VMs under TCG`);
  };
  const fallBack = (problem: string, probeMs: number | null): AcceleratorDecision =>
    ({ accelerator: 'tcg', why: `${problem}; using TCG`, fellBack: true, probeMs });

  try {
    await access(kvmDevice, constants.R_OK | constants.W_OK);
  } catch (e) {
    const problem = `${kvmDevice} cannot be opened for reading and writing (${errorMessage(e)})`;
    return choice === 'kvm' ? refuse(problem) : fallBack(problem, null);
  }
  const model = probedModel('kvm');
  const probe = await probeAccelerator({ qemuBinary: host.qemuBinary, accelerator: 'kvm', ...(host.probeTimeoutMs ? { timeoutMs: host.probeTimeoutMs } : {}) });
  if (!probe.ok) {
    const problem = `KVM probe failed (a test guest with ${model}): ${probe.reason}`;
    return choice === 'kvm' ? refuse(problem) : fallBack(problem, probe.ms);
  }
  const proof = `KVM probe booted a test guest with ${model} in ${probe.ms} ms`;
  return { accelerator: 'kvm', why: choice === 'kvm' ? `configured (kvm); ${proof}` : proof, fellBack: false, probeMs: probe.ms };
}
