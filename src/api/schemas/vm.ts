import { Type, type Static } from '@sinclair/typebox';
import { LIMITS, NAME_PATTERN, VM_STATES } from '../../domain/vm.js';
import { CLOUD_INIT_LIMITS as CL, CLOUD_INIT_PATTERNS as CP, DEFAULT_CLOUD_USER } from '../../domain/cloud-init.js';
import { ConsoleWaitResult } from './console.js';
import { WaitBody, WaitResult } from './wait.js';
import { DISTRO_ID } from '../../domain/distro.js';
import { ArgvString } from './common.js';

export const VmState = Type.Union(VM_STATES.map((s) => Type.Literal(s)), { description: 'Lifecycle state' });

export const VmName = Type.String({ pattern: NAME_PATTERN, description: 'Unique name: letters, digits, dot, dash, underscore; 1–63 chars' });

export const PortForward = Type.Object({
  host: Type.Integer({ minimum: LIMITS.hostPortMin, maximum: LIMITS.portMax, description: 'Port on 127.0.0.1 of the host' }),
  guest: Type.Integer({ minimum: 1, maximum: LIMITS.portMax }),
  protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')], { default: 'tcp' })),
}, { additionalProperties: false });

export const Network = Type.Object({
  mode: Type.Union([Type.Literal('user'), Type.Literal('none')], { description: 'user: QEMU user-mode NAT; none: no NIC' }),
  portForwards: Type.Array(PortForward, { maxItems: 64 }),
}, { additionalProperties: false });

export const NetworkInput = Type.Partial(Network, { additionalProperties: false });

export const Cpu = Type.Integer({ minimum: 1, maximum: LIMITS.cpuMax, description: 'vCPUs' });
export const MemoryMB = Type.Integer({ minimum: LIMITS.memoryMBMin, maximum: LIMITS.memoryMBMax, description: 'RAM in MiB' });
export const DiskGB = Type.Integer({ minimum: 1, maximum: LIMITS.diskGBMax, description: 'Disk size in GiB' });
export const Autostart = Type.Boolean({
  description: 'Start the VM when the daemon starts, if it is not up then (stopped, error, or suspended: resumed), in the VMs\' order; default false',
});
export const CloudInit = Type.Object({
  user: Type.Optional(Type.String({ pattern: CP.user, description: `Login to create, with passwordless sudo and bash; default \`${DEFAULT_CLOUD_USER}\` (not root)` })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: CL.password, description: 'Password of that user, for the console (stored and written to the guest only as a SHA-512 crypt hash; SSH stays key-only)' })),
  sshAuthorizedKeys: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: CL.key, pattern: CP.key }), {
    maxItems: CL.keys, description: 'authorized_keys lines for that user, besides Grove\'s own key (the CLI adds your ~/.ssh/id_*.pub)',
  })),
  hostname: Type.Optional(Type.String({ maxLength: CL.hostname, pattern: CP.hostname, description: 'Guest hostname (a dotted name also sets the FQDN); default: the VM name' })),
  packages: Type.Optional(Type.Array(Type.String({ maxLength: CL.package, pattern: CP.package }), { maxItems: CL.packages, description: 'Packages installed at first boot (qemu-guest-agent always is)' })),
  timezone: Type.Optional(Type.String({ maxLength: CL.timezone, pattern: CP.timezone, description: 'tz database name, e.g. `Europe/Paris`' })),
  userData: Type.Optional(Type.String({
    minLength: 1, maxLength: CL.userData,
    description: 'Your own cloud-config (first line `#cloud-config`, a YAML mapping), merged after Grove\'s: lists append, and a top-level setting you make replaces Grove\'s',
  })),
}, { additionalProperties: false, description: 'cloud-init (NoCloud seed attached to the VM); unknown fields are refused' });

export const CloudInitSummary = Type.Object({
  user: Type.String(),
  hostname: Type.String({ description: 'Hostname written to the seed' }),
  instanceId: Type.String({ description: 'NoCloud instance-id: the VM id (a clone or import gets its own, so cloud-init runs its first boot again)' }),
  sshAuthorizedKeys: Type.Array(Type.String()),
  packages: Type.Array(Type.String()),
  timezone: Type.Union([Type.String(), Type.Null()]),
  password: Type.Boolean({ description: 'A password was set (it is never shown)' }),
  userData: Type.Boolean({ description: 'A userData part was given' }),
}, { additionalProperties: false });

export const SshAccess = Type.Object({
  host: Type.String({ description: 'Address of the forward on the daemon\'s host (always 127.0.0.1)' }),
  port: Type.Integer(),
  user: Type.Union([Type.String(), Type.Null()], { description: 'The cloud-init user; null when the VM has no cloud-init (use the image\'s own)' }),
  privateKeyPath: Type.String({ description: 'Grove\'s private key, on the daemon\'s host' }),
  knownHostsPath: Type.String({ description: 'Grove\'s known_hosts file, on the daemon\'s host' }),
  hostKeyAlias: Type.String({ description: 'Name the VM\'s host key is remembered under (per VM, not per port)' }),
}, { additionalProperties: false });

/** A distro's catalog id, as VM creation and launch name it. */
export const DistroRef = Type.String({ minLength: 1, maxLength: 63, pattern: DISTRO_ID.source, description: 'Catalog id (`GET /distros`), e.g. `debian-12`' });

const HostPath = (what: string) => ArgvString({ minLength: 1, maxLength: 4096, description: `${what}: a path inside <data>/images or <data>/transfer (relative paths are taken from images/)` });

export const AgentStatus = Type.Object({
  connected: Type.Boolean({ description: 'The guest agent answered its last ping' }),
  version: Type.Union([Type.String(), Type.Null()], { description: 'qemu-guest-agent version, once it answered' }),
  os: Type.Union([Type.String(), Type.Null()], { description: 'The guest OS (os-release PRETTY_NAME), once the agent answered' }),
}, { description: 'The QEMU guest agent of a running or paused VM (null otherwise); in VM details and lists' });

export const Vm = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  state: VmState,
  cpu: Type.Integer(),
  memoryMB: Type.Integer(),
  diskGB: Type.Integer(),
  distro: Type.Union([Type.String(), Type.Null()]),
  boot: Type.Object({
    kernel: Type.Optional(Type.String()),
    initrd: Type.Optional(Type.String()),
    cmdline: Type.Optional(Type.String()),
    iso: Type.Optional(Type.String()),
  }),
  network: Network,
  order: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  accelerator: Type.Union([Type.Literal('kvm'), Type.Literal('tcg'), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  cloudInit: Type.Union([CloudInitSummary, Type.Null()], { description: 'The VM\'s cloud-init seed, or null' }),
  autostart: Autostart,
  agent: Type.Optional(Type.Union([AgentStatus, Type.Null()])),
}, { $id: 'Vm' });

export const VmRef = Type.Ref(Vm);
export const VmList = Type.Array(VmRef);

export const CreateVmBody = Type.Object({
  name: VmName,
  cpu: Type.Optional(Cpu),
  memoryMB: Type.Optional(MemoryMB),
  diskGB: Type.Optional(DiskGB),
  distro: Type.Optional({
    ...DistroRef,
    description: 'Catalog id (`GET /distros`), e.g. `debian-12`: the disk is a copy-on-write layer over the verified image, with a cloud-init seed (default `cloudInit: {}`) and an SSH forward. '
      + 'When the image is not local yet its download starts (or is joined) and the VM is `provisioning` (202) until it is verified. Takes none of image, kernel, initrd, cmdline, iso',
  }),
  image: Type.Optional(HostPath('Disk image copied into the VM as its disk')),
  imageFormat: Type.Optional(Type.Union([Type.Literal('qcow2'), Type.Literal('raw')], { description: 'Format of `image` (never probed); default qcow2' })),
  kernel: Type.Optional(HostPath('Kernel for direct boot')),
  initrd: Type.Optional(HostPath('Initrd for direct boot')),
  cmdline: Type.Optional(ArgvString({ maxLength: 4096, description: 'Kernel command line (direct boot)' })),
  iso: Type.Optional(HostPath('ISO attached as a CD-ROM and booted first')),
  network: Type.Optional(NetworkInput),
  cloudInit: Type.Optional(CloudInit),
  autostart: Type.Optional(Autostart),
}, { additionalProperties: false });
export type CreateVmBody = Static<typeof CreateVmBody>;

export const UpdateVmBody = Type.Object({
  name: Type.Optional(VmName),
  cpu: Type.Optional(Cpu),
  memoryMB: Type.Optional(MemoryMB),
  network: Type.Optional(NetworkInput),
  autostart: Type.Optional({ ...Autostart, description: 'Start the VM when the daemon starts (any state may change it)' }),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateVmBody = Static<typeof UpdateVmBody>;

export const CloneVmBody = Type.Object({
  name: Type.Optional({ ...VmName, description: 'Name of the clone; default `<source>-clone` (then `-clone-2`, …)' }),
  network: Type.Optional({ ...NetworkInput, description: 'Network of the clone; default: the source\'s mode without host port forwards (they would collide with the source\'s)' }),
}, { additionalProperties: false });
export type CloneVmBody = Static<typeof CloneVmBody>;

export const DeleteQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false, description: 'Kill a running VM first' })),
}, { additionalProperties: false });

export const ReorderBody = Type.Object({
  order: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 10000, description: 'VM ids or names; listed ones first, in this order' }),
}, { additionalProperties: false });

export const WaitFor = Type.Object({
  console: Type.String({ minLength: 1, maxLength: 1024, description: 'Text, or /regex/flags (i, m, s, u; RE2 syntax, matched in linear time: no backreferences or lookaround, refused with UNSUPPORTED_PATTERN), to wait for on the serial console' }),
  timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 60 })),
}, { additionalProperties: false });

export const StartBody = Type.Object({
  waitFor: Type.Optional(Type.Union([WaitFor, Type.Object({
    until: WaitBody.properties.until, mode: WaitBody.properties.mode, timeoutSeconds: WaitBody.properties.timeoutSeconds,
  }, { additionalProperties: false, description: 'Any wait conditions, as POST /vms/:id/wait takes them (console ones match from the first byte of this boot)' })])),
}, { additionalProperties: false });
export type StartBody = Static<typeof StartBody>;

export const StartResult = Type.Object({
  vm: Type.Ref(Vm),
  waitFor: Type.Optional(ConsoleWaitResult),
  waited: Type.Optional({ ...WaitResult, description: 'With `waitFor.until`: which conditions matched' }),
});

const TimeoutSeconds = Type.Number({ exclusiveMinimum: 0, maximum: 3600, description: 'How long to wait for the guest to power off (default 60)' });

export const StopBody = Type.Object({
  timeoutSeconds: Type.Optional(TimeoutSeconds),
  force: Type.Optional(Type.Boolean({ description: 'Cut power when the timeout passes' })),
}, { additionalProperties: false });
export type StopBody = Static<typeof StopBody>;

export const RestartBody = Type.Object({
  hard: Type.Optional(Type.Boolean({ description: 'Hardware reset instead of an ACPI power cycle' })),
  timeoutSeconds: Type.Optional(TimeoutSeconds),
}, { additionalProperties: false });
export type RestartBody = Static<typeof RestartBody>;

export const StopAllResult = Type.Object({
  results: Type.Array(Type.Object({
    id: Type.String(), name: Type.String(), ok: Type.Boolean(), state: VmState,
    error: Type.Optional(Type.Object({ code: Type.String(), detail: Type.String() })),
  })),
});

export const Runtime = Type.Object({
  state: VmState,
  pid: Type.Union([Type.Integer(), Type.Null()]),
  uptimeSeconds: Type.Union([Type.Integer(), Type.Null()]),
  cpuPercent: Type.Union([Type.Number(), Type.Null()]),
  rssBytes: Type.Union([Type.Integer(), Type.Null()]),
  disk: Type.Union([Type.Object({ readBytes: Type.Integer(), writeBytes: Type.Integer(), readOps: Type.Integer(), writeOps: Type.Integer() }), Type.Null()]),
  accelerator: Type.Union([Type.Literal('kvm'), Type.Literal('tcg'), Type.Null()]),
});

export const VmErrors = Type.Object({
  errors: Type.Array(Type.Object({
    id: Type.Integer(), at: Type.String({ format: 'date-time' }),
    source: Type.Union([Type.Literal('qemu'), Type.Literal('operation'), Type.Literal('guest')]), message: Type.String(),
  })),
});

export const ErrorsQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })) }, { additionalProperties: false });

export const SuspendStatus = Type.Object({
  suspended: Type.Boolean(),
  state: VmState,
  savedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  stateBytes: Type.Union([Type.Integer(), Type.Null()], { description: 'Size of the saved RAM and device state' }),
  runState: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Null()], { description: 'What the guest was doing; start resumes into it' }),
});
