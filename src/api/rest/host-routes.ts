import type { FastifyInstance } from 'fastify';
import { responses } from '../schemas/common.js';
import { Health, HostInfo, Metrics } from '../schemas/host.js';
import type { ApiServices } from './context.js';

export async function hostRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get('/health', {
    schema: { tags: ['Host'], summary: 'Liveness', operationId: 'health', security: [], response: responses({ 200: Health }, [], { public: true }) },
    config: { public: true },
  }, async () => ({ status: 'ok' as const, version: s.version, uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000) }));

  app.get('/host', {
    schema: { tags: ['Host'], summary: 'Host information', operationId: 'hostInfo', response: responses({ 200: HostInfo }, []) },
  }, async () => s.host.info());

  app.get('/metrics', {
    schema: { tags: ['Host'], summary: 'Host and per-VM usage', operationId: 'metrics', response: responses({ 200: Metrics }, []) },
  }, async () => s.host.metrics());
}
