import { join } from 'node:path';
import { DomainError, invalid } from '../domain/errors.js';
import {
  DEFAULT_CLOUD_USER, assertNotRoot, assertPublicKeyLines, hostnameFor, summarizeCloudInit, type CloudInitConfig, type CloudInitInput, type CloudInitRecord,
  type CloudInitSummary,
} from '../domain/cloud-init.js';
import { SSH_GUEST_PORT, sshForward, type Vm, type VmNetwork } from '../domain/vm.js';
import type { HostPorts } from '../ports/host-ports.js';
import type { VmRepo } from '../ports/repos.js';
import type { SeedStore } from '../ports/seed-store.js';
import type { SshIdentity } from '../ports/ssh-identity.js';
import { sha512Crypt } from '../util/sha512-crypt.js';
import { assertNoConflicts, renderMetaData, renderUserData } from './cloud-init/cloud-config.js';
import { SEED_FILE } from './layout.js';

export interface Provisioned {
  record: CloudInitRecord;
  summary: CloudInitSummary;
  /** The network asked for, with an SSH forward added when it had none. */
  network: VmNetwork;
  /** Frees the chosen port's reservation: call once the VM is recorded, or has failed. */
  release(): void;
}

export interface SshAccess {
  host: string;
  port: number;
  user: string | null;
  privateKeyPath: string;
  knownHostsPath: string;
  hostKeyAlias: string;
}

/**
 * cloud-init for VMs: the caller's `cloudInit` checked and kept (the password only as a hash), a NoCloud
 * seed written per VM instance (a clone or an import is a new instance: new instance-id, its own name),
 * and an SSH forward chosen so the VM can be logged into with Grove's key.
 */
export class CloudInitService {
  /** Ports chosen for VMs not recorded yet: two creates at once must not pick the same one. */
  private readonly reserved = new Set<number>();

  constructor(private readonly d: { vms: VmRepo; seeds: SeedStore; keys: SshIdentity; ports: HostPorts }) {}

  /** The caller's input as Grove keeps it; a 400 for anything it cannot honour. */
  prepare(input: CloudInitInput): CloudInitConfig {
    const user = input.user ?? DEFAULT_CLOUD_USER;
    assertNotRoot(user);
    const config: CloudInitConfig = {
      user,
      passwordHash: input.password !== undefined ? sha512Crypt(input.password) : null,
      sshAuthorizedKeys: [...new Set((input.sshAuthorizedKeys ?? []).map((k) => k.trim()))],
      hostname: input.hostname ?? null,
      packages: [...new Set(input.packages ?? [])],
      timezone: input.timezone ?? null,
      userData: input.userData ?? null,
    };
    if (config.sshAuthorizedKeys.some((k) => k === '')) throw invalid('cloudInit.sshAuthorizedKeys holds an empty key', { field: 'cloudInit.sshAuthorizedKeys' });
    assertPublicKeyLines(config.sshAuthorizedKeys);
    assertNoConflicts(config);
    return config;
  }

  /**
   * Writes `<dir>/seed.iso` for the VM `{ id, name }` and chooses its SSH forward: a free host port to
   * guest port 22, unless the network already has one or has no NIC.
   */
  async provision(dir: string, vm: { id: string; name: string }, config: CloudInitConfig, network: VmNetwork): Promise<Provisioned> {
    assertNoConflicts(config);
    const record: CloudInitRecord = { config, seed: { instanceId: vm.id, hostname: hostnameFor(vm.name, config.hostname) } };
    const groveKey = await this.d.keys.publicKey();
    await this.d.seeds.write(join(dir, SEED_FILE), {
      'meta-data': renderMetaData(record.seed),
      'user-data': renderUserData(config, record.seed, groveKey),
    });
    let port: number | null = null;
    let net = network;
    if (network.mode === 'user' && sshForward(network) === undefined) {
      port = await this.d.ports.pickFree(this.portsInUse(network));
      this.reserved.add(port);
      net = { ...network, portForwards: [...network.portForwards, { host: port, guest: SSH_GUEST_PORT, protocol: 'tcp' }] };
    }
    return {
      record, summary: summarizeCloudInit(record), network: net,
      release: () => { if (port !== null) this.reserved.delete(port); },
    };
  }

  /** How to reach a VM's SSH server from the daemon's host with Grove's key. */
  async sshAccess(vm: Vm): Promise<SshAccess> {
    const fwd = sshForward(vm.network);
    if (!fwd) {
      throw new DomainError('CONFLICT', `VM '${vm.name}' has no port forward to guest port ${SSH_GUEST_PORT}; add one (network.portForwards) while it is stopped`, { field: 'network.portForwards' });
    }
    await this.d.keys.publicKey(); // the key pair exists from here on
    return {
      host: '127.0.0.1', port: fwd.host, user: vm.cloudInit?.user ?? null, privateKeyPath: this.d.keys.privateKeyPath,
      knownHostsPath: this.d.keys.knownHostsPath,
      // Host keys are remembered per VM, not per port: a port used again by another VM is not a "changed host".
      hostKeyAlias: `grove-${vm.id}`,
    };
  }

  private portsInUse(network: VmNetwork): Set<number> {
    const used = new Set<number>(this.reserved);
    for (const f of network.portForwards) used.add(f.host);
    for (const vm of this.d.vms.list()) for (const f of vm.network.portForwards) used.add(f.host);
    return used;
  }
}
