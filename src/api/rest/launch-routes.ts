import type { FastifyInstance } from 'fastify';
import { responses } from '../schemas/common.js';
import { LaunchBody, LaunchResult } from '../schemas/launch.js';
import type { ApiServices } from './context.js';

export async function launchRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<{ Body: LaunchBody }>('/vms/launch', {
    schema: {
      tags: ['VMs'], summary: 'Launch a distro VM', operationId: 'launchVm',
      description: 'Create a VM from a catalog distro (downloading its image first when it is not local), start it and wait until the guest is ready '
        + '(`waitFor: ssh`, the default: its SSH server greets through the forwarded port), in one call. Then `grove ssh <name>` logs in. '
        + 'A failed download leaves the VM in `error` and answers with the download\'s code; a readiness timeout answers 504 TIMEOUT and the VM keeps running.',
      body: LaunchBody, response: responses({ 201: LaunchResult }, [404, 409, 502, 504, 507]),
    },
  }, async (req, reply) => {
    const r = await s.launch.launch(req.body);
    return reply.code(201).header('location', `/api/v1/vms/${r.vm.id}`).send(r);
  });
}
