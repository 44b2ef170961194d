import { Type, type Static } from '@sinclair/typebox';
import { PortForward } from './vm.js';

const Encoding = Type.Union([Type.Literal('utf8'), Type.Literal('base64')]);
const GuestPath = (description: string) => Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description });
const Mode = Type.String({ pattern: '^[0-7]{3,4}$', description: 'Permission bits in octal, e.g. 644 or 0755' });

export const ExecBody = Type.Object({
  argv: Type.Optional(Type.Array(Type.String({ maxLength: 131072 }), { minItems: 1, maxItems: 4096, description: 'Program and arguments, run as given (the program is searched in the agent\'s PATH)' })),
  command: Type.Optional(Type.String({ minLength: 1, maxLength: 131072, description: 'A shell command line, run by /bin/sh -c' })),
  stdin: Type.Optional(Type.String({ maxLength: 700000, description: 'Standard input (closed after it); text, or base64 with stdinEncoding' })),
  stdinEncoding: Type.Optional({ ...Encoding, default: 'utf8' }),
  env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 131072 }), {
    maxProperties: 256, description: 'Variables added to the agent\'s environment (through /usr/bin/env)',
  })),
  cwd: Type.Optional(GuestPath('Working directory (absolute); exit code 125 with the shell\'s message on stderr when it cannot be entered')),
  timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 30, description: 'The command and everything it started are killed (SIGKILL) after this' })),
  maxOutputBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777216, default: 1048576, description: 'Per stream; more is cut and `truncated` is set' })),
  detachOnTimeout: Type.Optional(Type.Boolean({ default: false, description: 'Run it as a durable job: past timeoutSeconds answer 202 with the job id (and the output so far) instead of killing it' })),
}, { additionalProperties: false });
export type ExecBody = Static<typeof ExecBody>;

export const ExecResult = Type.Object({
  exitCode: Type.Union([Type.Integer(), Type.Null()], { description: 'null when killed by a signal or timed out' }),
  signal: Type.Union([Type.Integer(), Type.Null()], { description: 'The signal that ended it (9 after a timeout)' }),
  stdout: Type.String(),
  stdoutEncoding: { ...Encoding, description: 'utf8 when the output is valid UTF-8 text, else base64' },
  stderr: Type.String(),
  stderrEncoding: Encoding,
  truncated: Type.Boolean({ description: 'Output was cut at maxOutputBytes (or at the agent\'s 16 MiB)' }),
  timedOut: Type.Boolean(),
  durationMs: Type.Integer(),
});

export const VmIp = Type.Object({
  ip: Type.Union([Type.String(), Type.Null()], { description: 'The first global IPv4 address (else IPv6) of the guest' }),
  interfaces: Type.Array(Type.Object({
    name: Type.String(),
    mac: Type.Union([Type.String(), Type.Null()]),
    addresses: Type.Array(Type.Object({ family: Type.Union([Type.Literal('ipv4'), Type.Literal('ipv6')]), address: Type.String(), prefix: Type.Integer() })),
  })),
  portForwards: Type.Array(PortForward, { description: 'Host ports (on 127.0.0.1) forwarded into the guest: how the host reaches a user-mode NAT guest' }),
});

const Nullable = Type.Union([Type.String(), Type.Null()]);
export const OsInfo = Type.Object({
  hostname: Type.String(),
  agentVersion: Type.String(),
  os: Type.Object({
    id: Nullable, name: Nullable, prettyName: Nullable, version: Nullable, versionId: Nullable,
    kernelRelease: Nullable, kernelVersion: Nullable, machine: Nullable,
  }),
});

export const FilePathQuery = Type.Object({ path: GuestPath('Absolute guest path') }, { additionalProperties: false });

export const FileEntry = Type.Object({
  name: Type.String(),
  type: Type.Union(['file', 'directory', 'symlink', 'fifo', 'socket', 'block-device', 'char-device', 'unknown'].map((t) => Type.Literal(t))),
  size: Type.Integer(),
  mode: Type.String({ description: 'Permission bits in octal' }),
  modifiedAt: Type.String({ format: 'date-time' }),
  uid: Type.Integer(),
  gid: Type.Integer(),
});

export const FileList = Type.Object({ path: Type.String(), entries: Type.Array(FileEntry) });

export const DeleteFileQuery = Type.Object({
  path: GuestPath('Absolute guest path'),
  recursive: Type.Optional(Type.Boolean({ default: false, description: 'Delete a non-empty directory with everything in it' })),
}, { additionalProperties: false });

export const MkdirBody = Type.Object({
  path: GuestPath('Directory to make (absolute)'),
  parents: Type.Optional(Type.Boolean({ default: false, description: 'Make missing parents too; an existing directory is then not an error' })),
  mode: Type.Optional(Mode),
}, { additionalProperties: false });

export const MkdirResult = Type.Object({ path: Type.String(), created: Type.Boolean({ description: 'false when it existed (parents=true)' }) });

export const UploadQuery = Type.Object({
  path: GuestPath('Destination file (absolute)'),
  mode: Type.Optional(Mode),
  overwrite: Type.Optional(Type.Boolean({ default: true, description: 'Replace an existing file; false: 409 CONFLICT when one is there' })),
}, { additionalProperties: false });

export const UploadResult = Type.Object({ path: Type.String(), bytes: Type.Integer() });
