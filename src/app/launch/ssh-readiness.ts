import { DomainError } from '../../domain/errors.js';
import { SSH_GUEST_PORT, sshForward, type Vm } from '../../domain/vm.js';
import type { TcpGreeting } from '../../ports/guest-network.js';
import { errorMessage } from '../../util/errors.js';
import type { ProbeOutcome, ReadinessProbe } from './guest-readiness.js';

/** RFC 4253 §4.2: protocol 2.0, or 1.99 from a server that also speaks the old one. */
const SSH_IDENT = /^SSH-(2\.0|1\.99)-/;

/** Ready when the guest's SSH server sends its identification line through the VM's forward to port 22. */
export class SshReadiness implements ReadinessProbe {
  constructor(private readonly greeting: TcpGreeting) {}

  async attempt(vm: Vm, timeoutMs: number): Promise<ProbeOutcome> {
    const fwd = sshForward(vm.network);
    if (!fwd) {
      throw new DomainError('CONFLICT', `VM '${vm.name}' has no port forward to guest port ${SSH_GUEST_PORT}, so SSH cannot be waited for`, { field: 'network.portForwards' });
    }
    try {
      const line = await this.greeting.firstLine('127.0.0.1', fwd.host, timeoutMs);
      return SSH_IDENT.test(line) ? { ready: true, detail: line } : { ready: false, reason: `not an SSH greeting: ${JSON.stringify(line.slice(0, 80))}` };
    } catch (e) {
      return { ready: false, reason: errorMessage(e) };
    }
  }
}
