import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { responses } from '../schemas/common.js';
import { Health, HostInfo, Metrics, MetricsQuery } from '../schemas/host.js';
import type { ApiServices } from './context.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, wantsPrometheus, type FaceStats } from './prometheus.js';

export async function hostRoutes(app: FastifyInstance, { services: s, stats }: { services: ApiServices; stats: FaceStats }): Promise<void> {
  app.get('/health', {
    schema: { tags: ['Host'], summary: 'Liveness', operationId: 'health', security: [], response: responses({ 200: Health }, [], { public: true }) },
    config: { public: true },
  }, async () => ({ status: 'ok' as const, version: s.version, uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000) }));

  app.get('/host', {
    schema: { tags: ['Host'], summary: 'Host information', operationId: 'hostInfo', response: responses({ 200: HostInfo }, []) },
  }, async () => s.host.info());

  app.get<{ Querystring: Static<typeof MetricsQuery> }>('/metrics', {
    schema: {
      tags: ['Host'], summary: 'Host and per-VM usage (JSON), or Prometheus metrics', operationId: 'metrics', querystring: MetricsQuery,
      description: 'JSON by default. For Prometheus (`?format=prometheus`, or the Accept header a scraper sends) the text format: per-VM CPU seconds, RSS, disk bytes and operations, state, uptime; API requests and latencies by route and status; event log size; webhook delivery outcomes and backlog; event stream clients. Network counters are not given: user-mode networking has none in QEMU.',
      response: responses({ 200: { description: 'Usage', content: { 'application/json': { schema: Metrics }, 'text/plain': { schema: { type: 'string' } } } } as never }, []),
    },
  }, async (req, reply) => {
    if (!wantsPrometheus(req.headers.accept, req.query.format)) return s.host.metrics();
    const text = await renderPrometheus(await s.observability.sample(), stats, s.version);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(text);
  });
}
