import { Type, type Static } from '@sinclair/typebox';
import { VM_STATES } from '../../domain/vm.js';
import { WAIT_KINDS, WAIT_LIMITS } from '../../domain/wait.js';

const closed = { additionalProperties: false } as const;

/** One readiness condition; exactly one kind per object. The same shapes in wait, start and launch `waitFor`. */
export const WaitCondition = Type.Union([
  Type.Object({
    console: Type.String({ minLength: 1, maxLength: 1024, description: 'Text, or /regex/flags, on the serial console' }),
    since: Type.Optional(Type.Integer({ minimum: 0, description: 'Console offset to match from (default: output from the start of the wait on)' })),
  }, closed),
  Type.Object({ agent: Type.Literal(true, { description: 'The guest agent answers' }) }, closed),
  Type.Object({ ip: Type.Literal(true, { description: 'The guest has a global address (through the agent)' }) }, closed),
  Type.Object({ port: Type.Integer({ minimum: 1, maximum: 65535, description: 'A TCP socket listens on this guest port (the agent reads /proc/net/tcp; without an agent, the forwarded host port must send a greeting)' }) }, closed),
  Type.Object({ file: Type.String({ minLength: 1, maxLength: 4096, description: 'A guest path that exists' }) }, closed),
  Type.Object({ command: Type.String({ minLength: 1, maxLength: 16384, description: 'A shell line (/bin/sh -c) that exits 0; re-run with back-off' }) }, closed),
  Type.Object({ state: Type.Union(VM_STATES.map((s) => Type.Literal(s)), { description: 'The VM reaches this state' }) }, closed),
  Type.Object({ event: Type.String({ minLength: 1, maxLength: 64, description: 'An event of this VM of this type (or `prefix.*`) is published' }) }, closed),
], { description: `One of: ${WAIT_KINDS.join(', ')}` });

export const WaitMode = Type.Union([Type.Literal('any'), Type.Literal('all')], { default: 'any', description: '`any`: the first condition met ends the wait; `all`: every one must be' });
const TimeoutSeconds = Type.Number({ exclusiveMinimum: 0, maximum: WAIT_LIMITS.maxTimeoutSeconds, default: WAIT_LIMITS.defaultTimeoutSeconds });

export const WaitBody = Type.Object({
  until: Type.Array(WaitCondition, { minItems: 1, maxItems: WAIT_LIMITS.maxConditions }),
  mode: Type.Optional(WaitMode),
  timeoutSeconds: Type.Optional(TimeoutSeconds),
}, closed);
export type WaitBody = Static<typeof WaitBody>;

export const WaitMatch = Type.Object({
  index: Type.Integer({ description: 'Position of the condition in `until`' }),
  kind: Type.Union(WAIT_KINDS.map((k) => Type.Literal(k))),
  condition: Type.Record(Type.String(), Type.Unknown(), { description: 'The condition as given' }),
  at: Type.String({ format: 'date-time' }),
  elapsedMs: Type.Integer({ description: 'From the start of the wait' }),
  evidence: Type.String({ description: 'What showed it: matched text and offset, address, listening socket, event id, command output, …' }),
});

export const WaitResult = Type.Object({
  mode: WaitMode,
  elapsedMs: Type.Integer(),
  matched: Type.Array(WaitMatch, { description: '`any`: the condition met first; `all`: every one, in the order met' }),
});
