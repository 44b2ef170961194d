import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { VmRefParams, responses } from '../schemas/common.js';
import { ResizeDiskBody, ScreenshotJson, ScreenshotQuery } from '../schemas/machine.js';
import { VmRef } from '../schemas/vm.js';
import type { ApiServices } from './context.js';

type Ref = { Params: Static<typeof VmRefParams> };
const binary = { type: 'string', format: 'binary' } as const;

export async function machineRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<Ref & { Body: Static<typeof ResizeDiskBody> }>('/vms/:id/disk/resize', {
    schema: {
      tags: ['VMs'], summary: 'Grow the disk', operationId: 'resizeDisk',
      description: 'Online (QMP block_resize) while the VM runs, with qemu-img when stopped. Shrinking is refused (400). A disk with snapshots grows too: each snapshot keeps the size it was taken at, and restoring it brings that size (and the VM\'s diskGB) back. The guest sees the larger disk; growing its partitions and filesystems is up to the guest.',
      params: VmRefParams, body: ResizeDiskBody, response: responses({ 200: VmRef }, [404, 409, 502]),
    },
  }, async (req) => s.disks.resize(req.params.id, req.body.sizeGB));

  app.get<Ref & { Querystring: Static<typeof ScreenshotQuery> }>('/vms/:id/screenshot', {
    schema: {
      tags: ['VMs'], summary: 'Screenshot of the display', operationId: 'takeScreenshot',
      description: 'JPEG by default, PNG with `?format=png`. `?scale=0.5` or `?maxWidth=640` shrink it (smaller images for agents). With `Accept: application/json`: `{ format, width, height, data }` (base64). The VM must be running or paused.',
      params: VmRefParams, querystring: ScreenshotQuery,
      response: responses({
        200: {
          description: 'The image',
          content: { 'image/jpeg': { schema: binary }, 'image/png': { schema: binary }, 'application/json': { schema: ScreenshotJson } },
        } as never,
      }, [404, 409, 502]),
    },
  }, async (req, reply) => {
    const q = req.query;
    const shot = await s.screenshots.take(req.params.id, {
      format: q.format ?? 'jpeg', quality: q.quality ?? 80,
      ...(q.scale !== undefined ? { scale: q.scale } : {}), ...(q.maxWidth !== undefined ? { maxWidth: q.maxWidth } : {}),
    });
    if ((req.headers.accept ?? '').includes('application/json')) {
      return reply.type('application/json').send({ format: shot.format, width: shot.width, height: shot.height, data: shot.data.toString('base64') });
    }
    return reply.type(shot.format === 'png' ? 'image/png' : 'image/jpeg').header('cache-control', 'no-store').send(shot.data);
  });
}
