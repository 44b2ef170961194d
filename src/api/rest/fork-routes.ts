import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { VmRefParams, responses } from '../schemas/common.js';
import { ForkBody, ForkResult } from '../schemas/fork.js';
import type { ApiServices } from './context.js';

type Ref = { Params: Static<typeof VmRefParams> };

export async function forkRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<Ref & { Body: ForkBody }>('/vms/:id/fork', {
    schema: {
      tags: ['VMs'], summary: 'Fork a running VM into N running copies', operationId: 'forkVm',
      description: 'The VM (running or paused) is paused once while its disk is split (copy-on-write layers, O(1)) and its RAM and device state are captured; '
        + '`count` new VMs then resume from that capture and run on from the exact same point. Each child has its own MAC and host port forwards, and once its guest agent '
        + 'answers it is re-identified (entropy, hostname, machine-id, MAC, a DHCP lease under it, SSH host keys if asked, port forwards aimed at its address), as `children[].reidentified` reports. '
        + 'The parent runs on (or stays paused with `keepParentPaused`). Parent and children are independent afterwards: deleting any leaves the others intact. '
        + '409 INVALID_STATE when the VM is not running or paused.',
      params: VmRefParams, body: ForkBody, response: responses({ 201: ForkResult }, [404, 409, 502, 504, 507]),
    },
  }, async (req, reply) => reply.code(201).send(await s.forks.fork(req.params.id, req.body)));
}
