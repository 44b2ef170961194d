import type { FastifyInstance } from 'fastify';
import { responses, VmRefParams } from '../schemas/common.js';
import { QemuLogChunk, QemuLogQuery } from '../schemas/logs.js';
import type { ApiServices } from './context.js';

export async function logRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get<{ Params: { id: string }; Querystring: QemuLogQuery }>('/vms/:id/qemu-log', {
    schema: {
      tags: ['VMs'], summary: 'QEMU\'s log of the VM', operationId: 'vmQemuLog', params: VmRefParams, querystring: QemuLogQuery,
      description: 'What QEMU itself wrote (`-D`) since the VM\'s latest start: warnings, errors, why the start failed. Read by byte offset: the tail by default, or from `since` (the `size` of an earlier answer) to follow it. Grove\'s own records of the VM\'s errors are at /vms/:id/errors.',
      response: responses({ 200: QemuLogChunk }, [404]),
    },
  }, async (req) => s.logs.qemuLog(req.params.id, req.query));
}
