import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import { VmRefParams, responses } from '../schemas/common.js';
import { ExportBody, ExportWritten, ImportJsonBody, ImportQuery } from '../schemas/bundle.js';
import { VmRef } from '../schemas/vm.js';
import type { ApiServices } from './context.js';
import { DomainError } from '../../domain/errors.js';

const ARCHIVE_TYPES = ['application/x-tar', 'application/gzip', 'application/octet-stream'];
const binary = { type: 'string', format: 'binary' } as const;

export async function bundleRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  // Uploaded bundles are streamed straight into the importer, never buffered: their size is bounded by
  // what the manifest declares and the free space, checked as the bytes arrive.
  app.addContentTypeParser(ARCHIVE_TYPES, (_req, payload, done) => done(null, payload));

  app.post<{ Params: Static<typeof VmRefParams>; Body: Static<typeof ExportBody> }>('/vms/:id/export', {
    schema: {
      tags: ['VMs'], summary: 'Export a VM as a bundle', operationId: 'exportVm',
      description: 'A tar (gzip with `compression: "gzip"`) of a versioned `manifest.json` (config, file sizes and SHA-256, snapshot metadata), the qcow2 disk with its internal snapshots, and kernel/initrd. Streamed back, or written to `<data>/transfer` with `path`. The VM must be stopped.',
      params: VmRefParams, body: ExportBody,
      response: responses({
        200: { description: 'The bundle', content: { 'application/x-tar': { schema: binary }, 'application/gzip': { schema: binary } } } as never,
        201: ExportWritten,
      }, [404, 409]),
    },
  }, async (req, reply) => {
    const gzip = req.body.compression === 'gzip';
    if (req.body.path !== undefined) {
      const asked = req.body.compression === undefined ? {} : { gzip };
      return reply.code(201).send(await s.bundles.exportToTransfer(req.params.id, { path: req.body.path, ...asked }));
    }
    const r = await s.bundles.export(req.params.id, { gzip });
    if (r.kind !== 'stream') throw new Error('a streamed export answered with a file');
    return reply.type(gzip ? 'application/gzip' : 'application/x-tar')
      .header('content-disposition', `attachment; filename="${r.vmName}.grove.tar${gzip ? '.gz' : ''}"`).send(r.stream);
  });

  app.post<{ Body: Static<typeof ImportJsonBody> | Readable; Querystring: Static<typeof ImportQuery> }>('/vms/import', {
    schema: {
      tags: ['VMs'], summary: 'Import a VM from a bundle', operationId: 'importVm',
      description: 'Either JSON `{ path, name? }` naming a bundle in `<data>/transfer`, or the bundle itself as the body (`application/x-tar` or `application/gzip`, `?name=` to rename). Every entry is checked against the manifest (names, types, sizes, SHA-256); links, unknown or extra entries, and paths are refused, and nothing is left behind.',
      querystring: ImportQuery,
      body: { content: { 'application/json': { schema: ImportJsonBody }, 'application/x-tar': { schema: {} }, 'application/gzip': { schema: {} } } } as never,
      response: responses({ 201: VmRef }, [409, 413, 415, 507]),
    },
  }, async (req, reply) => {
    const body = req.body;
    if (!isStream(body) && (typeof body !== 'object' || body === null || typeof (body as { path?: unknown }).path !== 'string')) {
      throw new DomainError('UNSUPPORTED_MEDIA_TYPE', `send JSON { path } or the bundle itself as ${ARCHIVE_TYPES.slice(0, 2).join(' or ')}`);
    }
    const vm = isStream(body)
      ? await s.bundles.import(body, req.query.name)
      : await s.bundles.importFromTransfer(body.path, body.name ?? req.query.name);
    return reply.code(201).header('location', `/api/v1/vms/${vm.id}`).send(vm);
  });
}

function isStream(b: unknown): b is Readable {
  return typeof b === 'object' && b !== null && typeof (b as Readable).pipe === 'function';
}
