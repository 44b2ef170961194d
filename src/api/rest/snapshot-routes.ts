import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { VmRefParams, responses } from '../schemas/common.js';
import { CreateSnapshotBody, RestoreResult, RestoreSnapshotBody, SnapshotList, SnapshotParams, SnapshotRef } from '../schemas/snapshot.js';
import type { ApiServices } from './context.js';

const tags = ['Snapshots'];
type Ref = { Params: Static<typeof VmRefParams> };
type SRef = { Params: Static<typeof SnapshotParams> };

export async function snapshotRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get<Ref>('/vms/:id/snapshots', {
    schema: { tags, summary: 'List snapshots', operationId: 'listSnapshots', params: VmRefParams, response: responses({ 200: SnapshotList }, [404]) },
  }, async (req) => s.snapshots.list(req.params.id));

  app.post<Ref & { Body: Static<typeof CreateSnapshotBody> }>('/vms/:id/snapshots', {
    schema: {
      tags, summary: 'Create a snapshot', operationId: 'createSnapshot',
      description: 'Running or paused VM: a live snapshot with RAM and device state (the guest pauses while it is written), unless `memory: false`. Stopped VM: the disk alone.',
      params: VmRefParams, body: CreateSnapshotBody, response: responses({ 201: SnapshotRef }, [404, 409, 502]),
    },
  }, async (req, reply) => reply.code(201).send(await s.snapshots.create(req.params.id, req.body)));

  app.post<SRef & { Body: Static<typeof RestoreSnapshotBody> }>('/vms/:id/snapshots/:sid/restore', {
    schema: {
      tags, summary: 'Restore a snapshot', operationId: 'restoreSnapshot',
      description: 'A live snapshot puts RAM, devices and disk back and leaves the VM in the run state it had then (a stopped VM is started from it). A disk-only snapshot needs the VM stopped: 409, or `force` powers it off first.',
      params: SnapshotParams, body: RestoreSnapshotBody, response: responses({ 200: RestoreResult }, [404, 409, 502]),
    },
  }, async (req) => s.snapshots.restore(req.params.id, req.params.sid, req.body));

  app.delete<SRef>('/vms/:id/snapshots/:sid', {
    schema: { tags, summary: 'Delete a snapshot', operationId: 'deleteSnapshot', params: SnapshotParams, response: responses({ 204: null }, [404, 409, 502]) },
  }, async (req, reply) => {
    await s.snapshots.delete(req.params.id, req.params.sid);
    return reply.code(204).send();
  });
}
