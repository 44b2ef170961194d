import { access, constants } from 'node:fs/promises';
import type { Accelerator } from '../../domain/vm.js';
import { run } from '../../util/run.js';

export type AcceleratorChoice = Accelerator | 'auto';

/**
 * `/dev/kvm` existing is not enough (nested hosts expose it and then refuse KVM_CREATE_VM), so `auto`
 * asks QEMU itself to bring KVM up once and quit.
 */
export async function chooseAccelerator(choice: AcceleratorChoice, qemuBinary: string): Promise<{ accelerator: Accelerator; why: string }> {
  if (choice !== 'auto') return { accelerator: choice, why: `configured (${choice})` };
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accelerator: 'tcg', why: '/dev/kvm is not usable' };
  }
  const ok = await probeKvm(qemuBinary);
  return ok ? { accelerator: 'kvm', why: 'KVM probe succeeded' } : { accelerator: 'tcg', why: 'KVM probe failed' };
}

async function probeKvm(qemuBinary: string): Promise<boolean> {
  const args = ['-accel', 'kvm', '-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', 'stdio'];
  const input = '{"execute":"qmp_capabilities"}\n{"execute":"query-kvm"}\n{"execute":"quit"}\n';
  try {
    const { stdout } = await run(qemuBinary, args, 5000, { input });
    return /"enabled":\s*true/.test(stdout);
  } catch {
    return false; // QEMU could not be run at all
  }
}
