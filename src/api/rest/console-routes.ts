import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { WebSocket } from 'ws';
import { Empty, VmRefParams, responses } from '../schemas/common.js';
import { ClearResult, ConsoleRead, ConsoleReadQuery, ConsoleSendBody, ConsoleSendResult, ExecuteBody, ExecuteResult } from '../schemas/console.js';
import type { ApiServices } from './context.js';
import { problem, sendProblem, toProblem } from './problem.js';
import { errorMessage } from '../../util/errors.js';

type Ref = { Params: Static<typeof VmRefParams> };
const tags = ['Console'];
/** A console WebSocket whose client stops reading is cut off rather than buffered without bound. */
const WS_MAX_BUFFERED = 4 * 1024 * 1024;

export async function consoleRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get<Ref & { Querystring: Static<typeof ConsoleReadQuery> }>('/vms/:id/console', {
    schema: {
      tags, summary: 'Read console output', operationId: 'readConsole',
      description: 'Serial console output by byte offset. Without `since`: the latest `limit` bytes since the last clear. With `since`: from there on; continue with `nextOffset`. History comes from the log QEMU writes, so it survives daemon restarts.',
      params: VmRefParams, querystring: ConsoleReadQuery, response: responses({ 200: ConsoleRead }, [404]),
    },
  }, async (req) => {
    const vm = s.vms.get(req.params.id);
    const q = req.query;
    return s.console.read(vm, { ...(q.since !== undefined ? { since: q.since } : {}), limit: q.limit ?? 65536, stripAnsi: q.strip === 'ansi' });
  });

  app.post<Ref & { Body: Static<typeof ConsoleSendBody> }>('/vms/:id/console', {
    schema: {
      tags, summary: 'Send text or keys', operationId: 'sendConsole',
      params: VmRefParams, body: ConsoleSendBody, response: responses({ 200: ConsoleSendResult }, [404, 409]),
    },
  }, async (req) => {
    return s.console.sendInput(s.vms.get(req.params.id), req.body);
  });

  app.post<Ref & { Body: Static<typeof ExecuteBody> }>('/vms/:id/console/execute', {
    schema: {
      tags, summary: 'Run a shell command over the serial console', operationId: 'consoleExecute',
      description: 'Types the command into the shell on the serial console and returns its output and exit code. Needs a shell prompt on the console (e.g. after the guest booted). On timeout the command is interrupted with Ctrl-C and `timedOut` is true. Commands on one VM run one after another.',
      params: VmRefParams, body: ExecuteBody, response: responses({ 200: ExecuteResult }, [404, 409]),
    },
  }, async (req) => {
    return s.console.execute(s.vms.get(req.params.id), req.body.command, (req.body.timeoutSeconds ?? 30) * 1000);
  });

  app.delete<Ref & { Body: Static<typeof Empty> }>('/vms/:id/console', {
    schema: {
      tags, summary: 'Clear the console buffer', operationId: 'clearConsole',
      description: 'Reads without `since` start after this point. The log file keeps the history.',
      params: VmRefParams, response: responses({ 200: ClearResult }, [404]),
    },
  }, async (req) => s.console.clear(s.vms.get(req.params.id)));

  app.route<Ref>({
    method: 'GET',
    url: '/vms/:id/console/ws',
    config: { originCheck: true },
    schema: {
      tags, summary: 'Interactive console (WebSocket)', operationId: 'consoleWebSocket',
      description: 'Upgrade to a WebSocket carrying the raw serial stream both ways (binary frames out; text or binary frames in), as xterm.js attach expects. The recent buffer is sent first. Closes when the VM stops.',
      params: VmRefParams, response: responses({ 101: null }, [404, 409, 426]),
    },
    handler: async (_req, reply) => sendProblem(reply, { ...problem('VALIDATION_FAILED', 'this endpoint speaks WebSocket only'), status: 426, title: 'Upgrade required' }),
    wsHandler: (socket: WebSocket, req) => {
      let vm;
      try {
        vm = s.vms.consoleTarget((req.params as { id: string }).id);
      } catch (e) {
        const p = toProblem(e, req);
        socket.close(4000 + p.status, p.detail.slice(0, 120));
        return;
      }
      const send = (chunk: Buffer): void => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > WS_MAX_BUFFERED) {
          socket.close(4008, 'slow consumer: output buffer limit exceeded');
          setTimeout(() => socket.terminate(), 2000).unref();
          return;
        }
        socket.send(chunk, { binary: true });
      };
      // Without the recent buffer the live stream is still worth having: log, keep the socket.
      s.console.read(vm, { limit: 64 * 1024, stripAnsi: false })
        .then((r) => { if (r.data) send(Buffer.from(r.data, 'utf8')); })
        .catch((e: unknown) => req.log.warn({ err: errorMessage(e), vm: vm.id }, 'console WebSocket: the recent buffer could not be sent'));
      const off = s.console.subscribe(vm.id, (chunk) => send(chunk));
      const watch = setInterval(() => {
        if (!s.console.isAttached(vm.id)) socket.close(1000, 'VM stopped');
      }, 500);
      socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        s.console.send(vm, buf).catch(() => socket.close(1011, 'console write failed'));
      });
      socket.on('close', () => { off(); clearInterval(watch); });
    },
  });
}
