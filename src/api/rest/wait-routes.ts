import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { VmRefParams, responses } from '../schemas/common.js';
import { WaitBody, WaitResult } from '../schemas/wait.js';
import type { ApiServices } from './context.js';

type Ref = { Params: Static<typeof VmRefParams> };

export async function waitRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<Ref & { Body: WaitBody }>('/vms/:id/wait', {
    schema: {
      tags: ['Lifecycle'], summary: 'Wait for readiness conditions', operationId: 'waitVm',
      description: 'Waits server-side until `any` (default) or `all` of the conditions in `until` hold, and answers which matched, when, and the evidence. '
        + 'Conditions: `{ console: "text or /regex/", since? }` (from `since` or from now), `{ agent: true }`, `{ ip: true }`, `{ port: n }` (a listening TCP socket in the guest, '
        + 'read through the agent; without one, a greeting through the forwarded host port), `{ file: path }`, `{ command: "shell line" }` (exit 0, re-run with back-off), '
        + '`{ state: s }`, `{ event: type }` (an event of this VM from now on). Driven by the console stream, the event bus and the agent; '
        + '504 TIMEOUT after `timeoutSeconds` naming what is still pending; 409 INVALID_STATE at once when the VM stops, fails or is deleted while a guest condition is pending.',
      params: VmRefParams, body: WaitBody, response: responses({ 200: WaitResult }, [404, 409, 504]),
    },
  }, async (req) => s.wait.wait(req.params.id, req.body));
}
