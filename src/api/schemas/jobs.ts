import { Type, type Static } from '@sinclair/typebox';
import { ExecBody, ExecResult } from './agent.js';

const Encoding = Type.Union([Type.Literal('utf8'), Type.Literal('base64')]);
const StreamName = Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]);
const SignalName = Type.Union([Type.Literal('TERM'), Type.Literal('KILL'), Type.Literal('INT'), Type.Literal('HUP'), Type.Literal('QUIT'), Type.Literal('USR1'), Type.Literal('USR2')]);

export const JobParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'VM id (UUID) or name' }),
  jid: Type.String({ minLength: 1, maxLength: 64, description: 'Job id' }),
}, { additionalProperties: false });

export const CreateJobBody = Type.Object({
  argv: ExecBody.properties.argv,
  command: ExecBody.properties.command,
  stdin: ExecBody.properties.stdin,
  stdinEncoding: ExecBody.properties.stdinEncoding,
  openStdin: Type.Optional(Type.Boolean({ default: false, description: 'Keep the command\'s input open for POST .../stdin until one with `eof`; otherwise it ends after `stdin`' })),
  env: ExecBody.properties.env,
  cwd: ExecBody.properties.cwd,
  timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 31_536_000, description: 'The command and everything it started are killed (SIGKILL) after this; default: no limit' })),
  maxOutputBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 4294967296, default: 268435456, description: 'Kept per stream; the rest is dropped, with a marker line where the cut is' })),
}, { additionalProperties: false });
export type CreateJobBody = Static<typeof CreateJobBody>;

const StreamInfo = Type.Object({
  bytes: Type.Integer({ description: 'Bytes kept (the marker included once capped)' }),
  dropped: Type.Integer({ description: 'Bytes printed beyond the cap and not kept' }),
  capped: Type.Boolean(),
});

export const Job = Type.Object({
  id: Type.String(),
  vmId: Type.String(),
  argv: Type.Array(Type.String()),
  state: Type.Union([Type.Literal('running'), Type.Literal('exited'), Type.Literal('lost')], { description: 'lost: Grove can no longer learn how it ended (the VM stopped or the guest rebooted)' }),
  guestPid: Type.Union([Type.Integer(), Type.Null()]),
  guestDir: Type.String({ description: 'Its folder in the guest while it runs (output files, FIFO, exit status)' }),
  openStdin: Type.Boolean(),
  stdinClosed: Type.Boolean(),
  exitCode: Type.Union([Type.Integer(), Type.Null()], { description: 'null while running, when a signal ended it, or when lost' }),
  signal: Type.Union([Type.Integer(), Type.Null()], { description: 'The signal that ended it (or that Grove sent while it runs)' }),
  timedOut: Type.Boolean(),
  reason: Type.Union([Type.String(), Type.Null()]),
  maxOutputBytes: Type.Integer(),
  timeoutSeconds: Type.Union([Type.Number(), Type.Null()]),
  stdout: StreamInfo,
  stderr: StreamInfo,
  createdAt: Type.String({ format: 'date-time' }),
  endedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const JobList = Type.Array(Job);
export const JobCreated = Type.Object({ id: Type.String(), job: Job });

export const JobOutputQuery = Type.Object({
  stream: Type.Optional({ ...StreamName, default: 'stdout' }),
  since: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Byte offset to read from' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777216, default: 1048576, description: 'At most this many bytes (JSON answers)' })),
  follow: Type.Optional(Type.Boolean({ default: false, description: 'With Accept: application/octet-stream: keep the answer open until the job has ended' })),
}, { additionalProperties: false });

export const JobOutput = Type.Object({
  stream: StreamName,
  data: Type.String(),
  encoding: { ...Encoding, description: 'utf8 when the bytes are valid UTF-8 (a character cut at the end is left for the next read), else base64' },
  offset: Type.Integer(),
  nextOffset: Type.Integer({ description: 'Where the next read starts' }),
  size: Type.Integer({ description: 'Bytes of the stream kept so far' }),
  ended: Type.Boolean({ description: 'The job has ended and nothing follows nextOffset' }),
  state: Job.properties.state,
});

export const JobStdinBody = Type.Object({
  data: Type.Optional(Type.String({ maxLength: 700000, description: 'Bytes for the command\'s input; text, or base64 with encoding' })),
  encoding: Type.Optional({ ...Encoding, default: 'utf8' }),
  eof: Type.Optional(Type.Boolean({ default: false, description: 'Close the input afterwards' })),
}, { additionalProperties: false });

export const JobKillBody = Type.Object({
  signal: Type.Optional({ ...SignalName, default: 'TERM', description: 'Sent to the command and everything it started (INT and QUIT are ignored by commands a non-interactive shell runs in the background, as jobs are)' }),
}, { additionalProperties: false });

export const ExecDetachedResult = Type.Composite([ExecResult, Type.Object({
  jobId: Type.Optional(Type.String({ description: 'With detachOnTimeout: the job the command runs as; on 202 it is still running' })),
  detached: Type.Optional(Type.Boolean({ description: 'true on 202: the command outlived timeoutSeconds and goes on as job `jobId`' })),
})]);
