import { pipeline } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { createWebSocketStream, type WebSocket } from 'ws';
import { VmRefParams, responses } from '../schemas/common.js';
import { InputBody, InputResult } from '../schemas/screen.js';
import type { ApiServices } from './context.js';
import { problem, sendProblem, toProblem } from './problem.js';
import { errorMessage } from '../../util/errors.js';

type Ref = { Params: Static<typeof VmRefParams> };
const tags = ['Screen'];

export async function screenRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<Ref & { Body: Static<typeof InputBody> }>('/vms/:id/input', {
    schema: {
      tags, summary: 'Keyboard and mouse input to the screen', operationId: 'sendInput',
      description: 'Input for scripts and agents without a VNC client, through QMP: `{ keys: ["ctrl-alt-delete", "enter"] }`, `{ text: "…" }` (US layout), `{ mouse: { x, y, button?, action? } }` in screen pixels (an absolute pointer: a USB and a virtio tablet), `{ scroll: { direction, clicks?, x?, y? } }`. Answers once the guest has been handed the input, so a screenshot taken next shows its effect. The VM must be running.',
      params: VmRefParams, body: InputBody, response: responses({ 200: InputResult }, [404, 409, 502]),
    },
  }, async (req) => s.screen.input(req.params.id, req.body));

  app.route<Ref>({
    method: 'GET',
    url: '/vms/:id/vnc',
    config: { originCheck: true },
    schema: {
      tags, summary: 'The screen over VNC (WebSocket)', operationId: 'vncWebSocket',
      description: 'Upgrade to a WebSocket carrying RFB (the VNC protocol) both ways in binary frames, to the VM\'s own VNC server (a unix socket in its folder, never a TCP port): noVNC and any RFB-over-WebSocket client attach here. Security type None (the WebSocket is already authenticated). Several viewers at once, each with a connection of its own; a viewer that leaves frees it. Closes when the VM stops. The VM must be running or paused (409 otherwise, before the upgrade).',
      params: VmRefParams, response: responses({ 101: null }, [404, 409, 426, 502]),
    },
    // Checked before the upgrade, so a client learns why with a real HTTP answer (409 problem).
    preHandler: async (req, reply) => {
      try {
        s.screen.vncTarget(req.params.id);
      } catch (e) {
        return refuseUpgrade(req, reply, e);
      }
    },
    handler: async (_req, reply) => sendProblem(reply, { ...problem('VALIDATION_FAILED', 'this endpoint speaks WebSocket only'), status: 426, title: 'Upgrade required' }),
    wsHandler: (socket: WebSocket, req) => {
      const ref = (req.params as { id: string }).id;
      // Frames from the client before QEMU's socket is open wait in the stream, not lost.
      const ws = createWebSocketStream(socket);
      ws.on('error', () => { /* the pipeline below reports */ });
      s.screen.openVnc(ref).then((vnc) => {
        const done = (err: Error | null): void => {
          if (err) req.log.debug({ err: errorMessage(err) }, 'VNC WebSocket ended');
          vnc.destroy();
          if (socket.readyState === socket.OPEN) socket.close(1000, 'VNC connection ended');
        };
        pipeline(ws, vnc, done);
        pipeline(vnc, ws, done);
      }, (e: unknown) => {
        const p = toProblem(e, req);
        socket.close(4000 + p.status, p.detail.slice(0, 120));
      });
    },
  });
}

/** A refused upgrade is answered, then its socket closed: it left the HTTP server's keep-alive handling. */
function refuseUpgrade(req: FastifyRequest, reply: FastifyReply, e: unknown): FastifyReply {
  if (req.headers.upgrade !== undefined) {
    reply.header('connection', 'close');
    reply.raw.once('finish', () => req.raw.socket.destroy());
  }
  return sendProblem(reply, toProblem(e, req));
}
