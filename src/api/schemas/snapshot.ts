import { Type } from '@sinclair/typebox';
import { NAME_PATTERN } from '../../domain/vm.js';
import { VmRef } from './vm.js';

export const Snapshot = Type.Object({
  id: Type.String({ format: 'uuid' }),
  vmId: Type.String({ format: 'uuid' }),
  tag: Type.String({ description: 'Its name inside the qcow2 file' }),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  kind: Type.Union([Type.Literal('live'), Type.Literal('disk')], { description: 'live: RAM + devices + disk; disk: the disk alone' }),
  vmState: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('stopped')], { description: 'The state a restore returns the VM to' }),
  diskGB: Type.Integer({ description: 'Disk size (GiB) when taken: a restore brings it back, and the VM\'s diskGB with it' }),
  createdAt: Type.String({ format: 'date-time' }),
}, { $id: 'Snapshot' });

export const SnapshotRef = Type.Ref(Snapshot);
export const SnapshotList = Type.Array(SnapshotRef);

export const SnapshotParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'VM id (UUID) or name' }),
  sid: Type.String({ minLength: 1, maxLength: 128, description: 'Snapshot id (UUID) or name' }),
}, { additionalProperties: false });

export const CreateSnapshotBody = Type.Object({
  name: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'Unique per VM; default snap-<timestamp>' })),
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  memory: Type.Optional(Type.Boolean({ description: 'Include RAM and device state; default true for a running or paused VM. A stopped VM gets a disk-only snapshot.' })),
}, { additionalProperties: false });

export const RestoreSnapshotBody = Type.Object({
  force: Type.Optional(Type.Boolean({ description: 'For a disk-only snapshot of a running VM: power it off first' })),
}, { additionalProperties: false });

export const RestoreResult = Type.Object({ vm: VmRef, snapshot: SnapshotRef });
