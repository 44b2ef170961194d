import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { responses } from '../schemas/common.js';
import { DistroList, Download, DownloadList, DownloadListQuery, DownloadParams, ImageParams, StartDownloadBody } from '../schemas/downloads.js';
import type { ApiServices } from './context.js';

const tags = ['Images'];
type Ref = { Params: Static<typeof DownloadParams> };

export async function downloadRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get('/distros', {
    schema: {
      tags, summary: 'List the distro catalog', operationId: 'listDistros',
      description: 'Every catalog entry (the shipped catalog, or the one `GROVE_CATALOG` names) with its checksum source, whether a verified image is local (`downloaded`, `image`) and the download under way, if any.',
      response: responses({ 200: DistroList }, []),
    },
  }, async () => s.downloads.distros());

  app.get<{ Querystring: Static<typeof DownloadListQuery> }>('/downloads', {
    schema: { tags, summary: 'List downloads', operationId: 'listDownloads', description: 'Newest first, with progress.', querystring: DownloadListQuery, response: responses({ 200: DownloadList }, []) },
  }, async (req) => s.downloads.list(req.query.limit ?? 100));

  app.post<{ Body: Static<typeof StartDownloadBody> }>('/downloads', {
    schema: {
      tags, summary: 'Download a distro image', operationId: 'startDownload',
      description: 'Starts downloading the image (202), or joins the download of it already queued or running (202, same id), or, when the verified image is already local, answers 200 with its completed download. Progress: `GET /downloads/{id}` or the `download.*` events. The file is streamed to `images/<file>.part`, resumed with Range after a dropped connection, verified against its digest and only then renamed into `images/`.',
      body: StartDownloadBody, response: responses({ 200: Download, 202: Download }, [404]),
    },
  }, async (req, reply) => {
    const r = await s.downloads.start(req.body.distro);
    return reply.code(r.outcome === 'local' ? 200 : 202).header('location', `/api/v1/downloads/${r.download.id}`).send(r.download);
  });

  app.get<Ref>('/downloads/:id', {
    schema: { tags, summary: 'Get a download', operationId: 'getDownload', params: DownloadParams, response: responses({ 200: Download }, [404]) },
  }, async (req) => s.downloads.get(req.params.id));

  app.delete<Ref>('/downloads/:id', {
    schema: {
      tags, summary: 'Cancel a download', operationId: 'cancelDownload',
      description: 'A queued or running download is cancelled (state `cancelled`, event `download.failed` with code DOWNLOAD_CANCELLED) and its partial file removed. On a failed download it removes the partial file kept for a later resume. A completed or cancelled one: 409.',
      params: DownloadParams, response: responses({ 200: Download }, [404, 409]),
    },
  }, async (req) => s.downloads.cancel(req.params.id));

  app.delete<{ Params: Static<typeof ImageParams> }>('/images/:distro', {
    schema: {
      tags, summary: 'Remove a local image', operationId: 'removeImage',
      description: 'Deletes the verified image of a distro from images/; 404 when there is none.',
      params: ImageParams, response: responses({ 204: null }, [404]),
    },
  }, async (req, reply) => {
    await s.downloads.removeImage(req.params.distro);
    return reply.code(204).send();
  });
}
