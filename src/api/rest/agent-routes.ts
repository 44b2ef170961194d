import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import { VmRefParams, responses } from '../schemas/common.js';
import {
  DeleteFileQuery, ExecBody, FileList, FilePathQuery, MkdirBody, MkdirResult, OsInfo, UploadQuery, UploadResult, VmIp,
} from '../schemas/agent.js';
import { ExecDetachedResult } from '../schemas/jobs.js';
import type { ApiServices } from './context.js';

type Ref = { Params: Static<typeof VmRefParams> };
const tags = ['Guest agent'];
const binary = { type: 'string', format: 'binary' } as const;
const AGENT_NOTE = 'Needs the VM running and a QEMU guest agent in it: 409 INVALID_STATE otherwise (naming the state), 409 GUEST_AGENT_UNAVAILABLE when no agent answers within a few seconds.';

/** Everything that goes through the VM's QEMU guest agent: exec, addresses, OS facts, files. */
export async function agentRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.post<Ref & { Body: ExecBody }>('/vms/:id/exec', {
    schema: {
      tags, summary: 'Run a command in the guest', operationId: 'execInGuest',
      description: 'Runs `argv` (as given) or `command` (through /bin/sh -c) with guest-exec and waits for it: exit code, stdout and stderr apart, '
        + 'each as text when it is valid UTF-8 or else base64 (`stdoutEncoding`, `stderrEncoding`). `stdin` is fed and closed; `env` is added to the '
        + 'agent\'s environment; `cwd` is entered first. Output beyond `maxOutputBytes` per stream is cut (`truncated`). After `timeoutSeconds` the '
        + 'command and every process it started are killed (`timedOut`, `signal` 9, `exitCode` null) — unless `detachOnTimeout`: then it runs as a '
        + 'durable job and, past the timeout, the answer is 202 with `detached`, its `jobId` and the output so far (see Jobs). A program that does not exist is 404. ' + AGENT_NOTE,
      params: VmRefParams, body: ExecBody, response: responses({ 200: ExecDetachedResult, 202: ExecDetachedResult }, [404, 409, 502]),
    },
  }, async (req, reply) => {
    const r = await s.exec.exec(req.params.id, req.body);
    return reply.code(r.detached ? 202 : 200).send(r);
  });

  app.get<Ref>('/vms/:id/ip', {
    schema: {
      tags, summary: 'Guest IP addresses', operationId: 'vmIp',
      description: 'The guest\'s interfaces and addresses (guest-network-get-interfaces), its primary address (`ip`: the first global IPv4, else IPv6), '
        + 'and the host ports forwarded into it (with user-mode NAT the guest address is not reachable from the host; the forwards are). ' + AGENT_NOTE,
      params: VmRefParams, response: responses({ 200: VmIp }, [404, 409, 502]),
    },
  }, async (req) => s.agents.ip(req.params.id));

  app.get<Ref>('/vms/:id/osinfo', {
    schema: {
      tags, summary: 'Guest OS facts', operationId: 'vmOsInfo',
      description: 'Host name, agent version and the guest OS (os-release and kernel) as the agent reports them. ' + AGENT_NOTE,
      params: VmRefParams, response: responses({ 200: OsInfo }, [404, 409, 502]),
    },
  }, async (req) => s.agents.osInfo(req.params.id));

  app.get<Ref & { Querystring: Static<typeof FilePathQuery> }>('/vms/:id/files', {
    schema: {
      tags, summary: 'List a guest directory', operationId: 'listGuestFiles',
      description: 'Entries of a directory (name, type, size, mode, mtime, owner), sorted by name; symlinks are not followed. 404 when it does not exist, 400 when it is not a directory. ' + AGENT_NOTE,
      params: VmRefParams, querystring: FilePathQuery, response: responses({ 200: FileList }, [404, 409, 502]),
    },
  }, async (req) => s.files.list(req.params.id, req.query.path));

  app.delete<Ref & { Querystring: Static<typeof DeleteFileQuery> }>('/vms/:id/files', {
    schema: {
      tags, summary: 'Delete a guest file or directory', operationId: 'deleteGuestFile',
      description: 'A file, a symlink (not its target) or an empty directory; a non-empty directory needs `recursive=true` (409 CONFLICT otherwise). 404 when nothing is there. ' + AGENT_NOTE,
      params: VmRefParams, querystring: DeleteFileQuery, response: responses({ 204: null }, [404, 409, 502]),
    },
  }, async (req, reply) => {
    await s.files.remove(req.params.id, req.query.path, req.query.recursive ?? false);
    return reply.code(204).send();
  });

  app.post<Ref & { Body: Static<typeof MkdirBody> }>('/vms/:id/files/mkdir', {
    schema: {
      tags, summary: 'Make a guest directory', operationId: 'makeGuestDirectory',
      description: 'Without `parents`: 409 CONFLICT when something exists there, 404 when the parent is missing. With `parents`: missing parents are made and an existing directory is fine (`created: false`). ' + AGENT_NOTE,
      params: VmRefParams, body: MkdirBody, response: responses({ 201: MkdirResult, 200: MkdirResult }, [404, 409, 502]),
    },
  }, async (req, reply) => {
    const r = await s.files.mkdir(req.params.id, req.body.path, { parents: req.body.parents ?? false, ...(req.body.mode !== undefined ? { mode: req.body.mode } : {}) });
    return reply.code(r.created ? 201 : 200).send(r);
  });
}

/**
 * File content in both directions, as raw bytes: its own plugin, where every request body (JSON and text
 * included) reaches the route as the unread stream.
 */
export async function fileContentRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.get<Ref & { Querystring: Static<typeof FilePathQuery> }>('/vms/:id/files/content', {
    schema: {
      tags, summary: 'Download a guest file', operationId: 'downloadGuestFile',
      description: 'The file\'s bytes (application/octet-stream), streamed as they are read from the guest in 4 MiB chunks (guest-file-read): any size, binary-safe. 404 when it does not exist, 400 for a directory. ' + AGENT_NOTE,
      params: VmRefParams, querystring: FilePathQuery,
      response: responses({ 200: { description: 'The file', content: { 'application/octet-stream': { schema: binary } } } as never }, [404, 409, 502]),
    },
  }, async (req, reply) => {
    const stream = await s.files.download(req.params.id, req.query.path);
    return reply.type('application/octet-stream').header('cache-control', 'no-store').send(stream);
  });

  app.put<Ref & { Querystring: Static<typeof UploadQuery>; Body: unknown }>('/vms/:id/files/content', {
    schema: {
      tags, summary: 'Upload a guest file', operationId: 'uploadGuestFile',
      description: 'The request body (any content type, raw bytes, any size) becomes the file: streamed to a temporary file beside it in 4 MiB chunks '
        + '(guest-file-write), which then replaces the destination atomically; an aborted upload leaves the destination as it was. `overwrite=false`: '
        + '409 CONFLICT when something is there. `mode` sets the permission bits (default: an existing file keeps its own, a new one gets 0644). '
        + 'The file is owned by the agent\'s user. 404 when the directory does not exist. ' + AGENT_NOTE,
      params: VmRefParams, querystring: UploadQuery,
      // Not validated (it is a stream); the document still says what it is.
      body: { content: { 'application/octet-stream': { schema: { description: 'The file\'s bytes' } } } } as never,
      response: responses({ 201: UploadResult }, [404, 409, 502, 507]),
    },
  }, async (req, reply) => {
    const body = isStream(req.body) ? req.body : emptyBody();
    const r = await s.files.upload(req.params.id, req.query.path, body, {
      overwrite: req.query.overwrite ?? true, ...(req.query.mode !== undefined ? { mode: req.query.mode } : {}),
    });
    return reply.code(201).send(r);
  });
}

function isStream(b: unknown): b is Readable {
  return typeof b === 'object' && b !== null && typeof (b as Readable).pipe === 'function';
}

/** A request without a body (Fastify hands the route `{}` then): an empty file. */
async function* emptyBody(): AsyncGenerator<Buffer> { /* no bytes */ }
