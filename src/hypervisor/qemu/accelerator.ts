import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import type { Accelerator } from '../../domain/vm.js';

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

function probeKvm(qemuBinary: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(qemuBinary, ['-accel', 'kvm', '-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', 'stdio'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(false); }, 5000);
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.once('error', () => { clearTimeout(timer); resolve(false); });
    child.once('close', () => { clearTimeout(timer); resolve(out.includes('"enabled": true')); });
    child.stdin.end('{"execute":"qmp_capabilities"}\n{"execute":"query-kvm"}\n{"execute":"quit"}\n');
  });
}
