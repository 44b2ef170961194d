import { Type, type Static } from '@sinclair/typebox';
import { READINESS_CHECKS } from '../../domain/readiness.js';
import { WaitBody, WaitResult } from './wait.js';
import { Autostart, CloudInit, Cpu, DiskGB, DistroRef, MemoryMB, NetworkInput, Vm, VmName } from './vm.js';

export const LaunchBody = Type.Object({
  distro: DistroRef,
  name: Type.Optional({ ...VmName, description: 'Name of the VM; default `<distro>-<4 hex digits>`, e.g. `debian-12-3fa9`' }),
  cpu: Type.Optional(Cpu),
  memoryMB: Type.Optional(MemoryMB),
  diskGB: Type.Optional({ ...DiskGB, description: 'Disk size in GiB; default 8, or the image\'s own size when larger' }),
  network: Type.Optional(NetworkInput),
  autostart: Type.Optional(Autostart),
  cloudInit: Type.Optional({ ...CloudInit, description: 'cloud-init for the VM (default `{}`: the user `grove` with Grove\'s SSH key and passwordless sudo, the guest agent)' }),
  waitFor: Type.Optional(Type.Union([...READINESS_CHECKS.map((c) => Type.Literal(c)), Type.Literal('none'), Type.Object({
    until: WaitBody.properties.until, mode: WaitBody.properties.mode,
  }, { additionalProperties: false, description: 'Any wait conditions, as POST /vms/:id/wait takes them (answered in `waited`)' })], {
    default: 'ssh', description: '`ssh`: answer once the guest\'s SSH server greets through its forwarded port; `none`: once QEMU runs; `{ until, mode? }`: once those wait conditions hold',
  })),
  timeoutSeconds: Type.Optional(Type.Integer({
    minimum: 1, maximum: 3600, default: 300, description: 'How long to wait for readiness after the start (a download before it is not counted)',
  })),
}, { additionalProperties: false });
export type LaunchBody = Static<typeof LaunchBody>;

export const LaunchResult = Type.Object({
  vm: Type.Ref(Vm),
  image: Type.Union([Type.Literal('local'), Type.Literal('downloaded')], { description: 'Whether this launch waited for the image\'s download' }),
  ready: Type.Union([Type.Object({
    check: Type.Union(READINESS_CHECKS.map((c) => Type.Literal(c))),
    elapsedMs: Type.Integer({ description: 'From the start of the wait to the guest\'s answer' }),
    attempts: Type.Integer(),
    detail: Type.String({ description: 'What answered, e.g. the SSH server\'s identification line' }),
  }), Type.Null()], { description: 'null with `waitFor: none` or `{ until }`' }),
  waited: Type.Optional({ ...WaitResult, description: 'With `waitFor: { until }`: which conditions matched' }),
  durations: Type.Object({
    provisionMs: Type.Integer({ description: 'Creating the VM, including waiting for its image' }),
    startMs: Type.Integer({ description: 'Starting QEMU' }),
    readyMs: Type.Union([Type.Integer(), Type.Null()], { description: 'From the start until ready' }),
  }),
});
