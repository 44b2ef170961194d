import type { CloudInitSummary } from './cloud-init.js';
import { invalid } from './errors.js';

/** `provisioning`: a distro VM waiting for its image (downloading); it becomes stopped once it has its disk. */
export const VM_STATES = ['provisioning', 'stopped', 'starting', 'running', 'paused', 'stopping', 'suspending', 'suspended', 'error'] as const;
export type VmState = (typeof VM_STATES)[number];

export type Accelerator = 'kvm' | 'tcg';

/** Where QEMU's user network aims host port forwards that name no guest address: its first DHCP lease. */
export const USER_NET_FIRST_ADDRESS = '10.0.2.15';

/** A dotted IPv4 address: the one form of guest address Grove writes into QEMU's HMP command lines. */
export function isDottedIPv4(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && s.split('.').every((n) => Number(n) <= 255);
}

export interface PortForward {
  host: number;
  guest: number;
  protocol: 'tcp' | 'udp';
}

export interface VmNetwork {
  mode: 'user' | 'none';
  portForwards: PortForward[];
}

/** As callers give it: any part may be left out; a forward's protocol defaults to tcp. */
export interface VmNetworkInput {
  mode?: VmNetwork['mode'];
  portForwards?: (Omit<PortForward, 'protocol'> & { protocol?: PortForward['protocol'] })[];
}

/** The network `input` asks for over `current` (what it leaves out stays), checked. */
export function resolveNetwork(input: VmNetworkInput | undefined, current: VmNetwork = { mode: 'user', portForwards: [] }): VmNetwork {
  const net: VmNetwork = {
    mode: input?.mode ?? current.mode,
    portForwards: input?.portForwards?.map((f) => ({ host: f.host, guest: f.guest, protocol: f.protocol ?? 'tcp' })) ?? current.portForwards,
  };
  assertValidNetwork(net);
  return net;
}

export const SSH_GUEST_PORT = 22;

/** The host port forward that reaches the guest's SSH server, if the VM has one. */
export function sshForward(net: VmNetwork): PortForward | undefined {
  return net.mode === 'user' ? net.portForwards.find((f) => f.guest === SSH_GUEST_PORT && f.protocol === 'tcp') : undefined;
}

/** Paths here are the VM's own copies inside its folder, never the caller's originals. */
export interface VmBoot {
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  iso?: string;
}

export interface Vm {
  id: string;
  name: string;
  state: VmState;
  cpu: number;
  memoryMB: number;
  diskGB: number;
  distro: string | null;
  boot: VmBoot;
  network: VmNetwork;
  order: number;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  accelerator: Accelerator | null;
  lastError: string | null;
  /** The VM's cloud-init seed (`seed.iso` in its folder, attached read-only), or null when it has none. */
  cloudInit: CloudInitSummary | null;
  /** Started (or resumed) when the daemon starts, if it is not up then (Incus `boot.autostart`, `virsh autostart`). */
  autostart: boolean;
}

export const NAME_MAX_LENGTH = 63;
export const NAME_PATTERN = `^[A-Za-z0-9][A-Za-z0-9._-]{0,${NAME_MAX_LENGTH - 1}}$`;
const NAME_RE = new RegExp(NAME_PATTERN);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

export function assertValidName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw invalid(`name '${name}' must match ${NAME_PATTERN}`, { field: 'name' });
  }
}

/** Host ports below 1024 would need privileges QEMU should not have; two forwards may not share one. */
export function assertValidNetwork(net: VmNetwork): void {
  const seen = new Set<string>();
  for (const f of net.portForwards) {
    if (net.mode === 'none') throw invalid('portForwards need network.mode "user"', { field: 'network.portForwards' });
    const key = `${f.protocol}:${f.host}`;
    if (seen.has(key)) throw invalid(`host port ${f.protocol}/${f.host} is forwarded twice`, { field: 'network.portForwards' });
    seen.add(key);
  }
}

export const LIMITS = {
  cpuMax: 64,
  memoryMBMin: 16,
  memoryMBMax: 1024 * 1024,
  diskGBMax: 64 * 1024,
  /** Forwarded host ports: unprivileged only. */
  hostPortMin: 1024,
  portMax: 65535,
} as const;

/** Whether text holds a C0 control character or DEL: never allowed in a value that reaches QEMU's command line. */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
