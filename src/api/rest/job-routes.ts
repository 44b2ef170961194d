import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { WebSocket } from 'ws';
import { VmRefParams, responses } from '../schemas/common.js';
import { CreateJobBody, Job, JobCreated, JobKillBody, JobList, JobOutput, JobOutputQuery, JobParams, JobStdinBody } from '../schemas/jobs.js';
import { decodeInput } from '../../app/agent/exec-service.js';
import type { OutputChunk } from '../../app/jobs/job-service.js';
import type { JobStream } from '../../domain/job.js';
import { asText } from '../../app/jobs/output-text.js';
import type { ApiServices } from './context.js';
import { toProblem } from './problem.js';

type Ref = { Params: Static<typeof VmRefParams> };
type JobRef = { Params: Static<typeof JobParams> };
type OutQ = JobRef & { Querystring: Static<typeof JobOutputQuery> };
const tags = ['Jobs'];
const NOTE = 'Starting, stdin and kill need the VM running and its guest agent answering (409 INVALID_STATE / GUEST_AGENT_UNAVAILABLE); reading a job\'s record and output does not.';
const HEARTBEAT_MS = 15_000;

/** Durable exec jobs: start, list, read and follow output (JSON, raw bytes, SSE, WebSocket), stdin, kill. */
export async function jobRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<Ref & { Body: CreateJobBody }>('/vms/:id/jobs', {
    schema: {
      tags, summary: 'Start a durable job', operationId: 'createJob',
      description: 'Runs `argv` or `command` in the guest as a job and answers at once (202) with its id. Its output is copied into files in the VM folder '
        + 'as it arrives: read it by offset, follow it live, come back after a disconnect or a daemon restart and lose nothing. `stdin` is given at the '
        + 'start; with `openStdin` more can be fed with POST .../stdin. Output beyond `maxOutputBytes` per stream is dropped, with a marker line at the cut. '
        + NOTE,
      params: VmRefParams, body: CreateJobBody, response: responses({ 202: JobCreated }, [404, 409, 502]),
    },
  }, async (req, reply) => {
    const job = await s.jobs.create(req.params.id, req.body);
    return reply.code(202).send({ id: job.id, job });
  });

  app.get<Ref>('/vms/:id/jobs', {
    schema: { tags, summary: 'List a VM\'s jobs', operationId: 'listJobs', description: 'Newest first.', params: VmRefParams, response: responses({ 200: JobList }, [404]) },
  }, async (req) => s.jobs.list(req.params.id));

  app.get<JobRef>('/vms/:id/jobs/:jid', {
    schema: {
      tags, summary: 'One job', operationId: 'getJob',
      description: 'State (running, exited, lost), exit code or signal, start and end, output sizes per stream (kept, dropped, capped).',
      params: JobParams, response: responses({ 200: Job }, [404]),
    },
  }, async (req) => s.jobs.get(req.params.id, req.params.jid));

  app.route<OutQ>({
    method: 'GET',
    url: '/vms/:id/jobs/:jid/output',
    config: { originCheck: true },
    schema: {
      tags, summary: 'A job\'s output (JSON, raw, SSE or WebSocket)', operationId: 'jobOutput',
      description: [
        'One stream (`stream`, default stdout) from the byte offset `since`. JSON by default: up to `limit` bytes, as text when valid UTF-8 else base64, with',
        '`nextOffset` and `ended`. `Accept: application/octet-stream`: the raw bytes from `since` to the current end, or with `follow=true` until the job',
        'has ended. `Accept: text/event-stream`: `event: output` records (`id:` is the offset after the record, so `Last-Event-ID` resumes exactly there;',
        '`data:` is JSON `{ stream, offset, data (base64) }`), then `event: end` with the job. A WebSocket upgrade on the same path sends the same JSON',
        'records, then `{ "type": "end", "job": ... }`.',
      ].join(' '),
      params: JobParams, querystring: JobOutputQuery, response: responses({ 200: JobOutput }, [404]),
    },
    handler: async (req, reply) => {
      const { id, jid } = req.params;
      const stream = req.query.stream ?? 'stdout';
      const accept = req.headers.accept ?? '';
      if (accept.includes('text/event-stream')) {
        const header = req.headers['last-event-id'];
        const since = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : (req.query.since ?? 0);
        s.jobs.get(id, jid);
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        const stop = new AbortController();
        res.on('close', () => stop.abort());
        const heartbeat = setInterval(() => { if (!res.destroyed) res.write(': heartbeat\n\n'); }, HEARTBEAT_MS);
        try {
          for await (const c of s.jobs.followOutput(id, jid, stream, since, stop.signal)) {
            const ok = res.write(`id: ${c.offset + c.data.length}\nevent: output\ndata: ${JSON.stringify(record(c))}\n\n`);
            if (!ok) await drained(res, stop.signal);
          }
          if (!stop.signal.aborted) res.end(`event: end\ndata: ${JSON.stringify({ job: s.jobs.get(id, jid) })}\n\n`);
        } catch (e) {
          if (!res.destroyed) res.end(`event: error\ndata: ${JSON.stringify(toProblem(e, req))}\n\n`);
        } finally {
          clearInterval(heartbeat);
        }
        return reply;
      }
      if (accept.includes('application/octet-stream')) {
        s.jobs.get(id, jid);
        const since = req.query.since ?? 0;
        const stop = new AbortController();
        req.raw.on('close', () => stop.abort());
        const chunks = req.query.follow ? s.jobs.followOutput(id, jid, stream, since, stop.signal) : upToNow(s, id, jid, stream, since);
        return reply.type('application/octet-stream').header('cache-control', 'no-store').send(Readable.from(bytesOf(chunks)));
      }
      const r = await s.jobs.read(id, jid, stream, req.query.since ?? 0, req.query.limit);
      const text = asText(r.data, r.ended);
      return {
        stream, data: text.data, encoding: text.encoding, offset: r.offset, nextOffset: r.offset + text.used, size: r.size,
        ended: r.ended && text.used === r.data.length, state: r.job.state,
      };
    },
    wsHandler: (socket: WebSocket, req) => {
      const { id, jid } = (req as FastifyRequest<OutQ>).params;
      const q = (req as FastifyRequest<OutQ>).query;
      const stop = new AbortController();
      socket.on('close', () => stop.abort());
      (async () => {
        try {
          s.jobs.get(id, jid);
          for await (const c of s.jobs.followOutput(id, jid, q.stream ?? 'stdout', q.since ?? 0, stop.signal)) {
            // Each record waits for the one before to be handed to the network: a slow reader slows the reading, never the daemon.
            await new Promise<void>((resolve, reject) => socket.send(JSON.stringify({ type: 'output', ...record(c) }), (err) => (err ? reject(err) : resolve())));
          }
          if (!stop.signal.aborted) {
            socket.send(JSON.stringify({ type: 'end', job: s.jobs.get(id, jid) }));
            socket.close(1000, 'job ended');
          }
        } catch (e) {
          const p = toProblem(e, req);
          if (socket.readyState === socket.OPEN) socket.close(4000 + p.status, p.detail.slice(0, 120));
        }
      })().catch(() => undefined);
    },
  });

  app.post<JobRef & { Body: Static<typeof JobStdinBody> }>('/vms/:id/jobs/:jid/stdin', {
    schema: {
      tags, summary: 'Feed a job\'s input', operationId: 'jobStdin',
      description: 'Bytes for the command\'s standard input (jobs started with `openStdin`), written whole in order; `eof` closes the input afterwards. '
        + '409 INVALID_STATE when the job has ended, its input is closed or it was not started with openStdin; 504 TIMEOUT when the command does not read for 60 s. ' + NOTE,
      params: JobParams, body: JobStdinBody, response: responses({ 200: Job }, [404, 409, 502, 504]),
    },
  }, async (req) => {
    const data = req.body.data === undefined ? Buffer.alloc(0) : decodeInput(req.body.data, req.body.encoding ?? 'utf8', 'data');
    return s.jobs.stdin(req.params.id, req.params.jid, data, req.body.eof ?? false);
  });

  app.post<JobRef & { Body: Static<typeof JobKillBody> }>('/vms/:id/jobs/:jid/kill', {
    schema: {
      tags, summary: 'Signal a job', operationId: 'killJob',
      description: 'Sends `signal` (default TERM) to the command and every process it started; the job ends as the command reacts (see its `signal`). '
        + '409 INVALID_STATE once it has ended. ' + NOTE,
      params: JobParams, body: JobKillBody, response: responses({ 200: Job }, [404, 409, 502]),
    },
  }, async (req) => s.jobs.kill(req.params.id, req.params.jid, req.body.signal ?? 'TERM'));
}

function record(c: OutputChunk): { stream: JobStream; offset: number; data: string } {
  return { stream: c.stream, offset: c.offset, data: c.data.toString('base64') };
}

async function* upToNow(s: ApiServices, id: string, jid: string, stream: JobStream, since: number): AsyncGenerator<OutputChunk> {
  for (let at = since; ;) {
    const r = await s.jobs.read(id, jid, stream, at);
    if (r.data.length === 0) return;
    yield { stream, offset: at, data: r.data };
    at += r.data.length;
  }
}

async function* bytesOf(chunks: AsyncGenerator<OutputChunk>): AsyncGenerator<Buffer> {
  for await (const c of chunks) yield c.data;
}

function drained(res: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { res.off('drain', done); signal.removeEventListener('abort', done); resolve(); };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
