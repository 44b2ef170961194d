import { Type } from '@sinclair/typebox';

export const ConsoleReadQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Console offset to read from (a previous nextOffset); omitted: the most recent output' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1048576, default: 65536, description: 'Maximum bytes' })),
  strip: Type.Optional(Type.Literal('ansi', { description: 'Remove ANSI escape sequences' })),
}, { additionalProperties: false });

export const ConsoleRead = Type.Object({
  data: Type.String(),
  offset: Type.Integer({ description: 'Offset of the first byte returned' }),
  nextOffset: Type.Integer({ description: 'Pass as `since` to continue' }),
  truncated: Type.Boolean({ description: 'More output exists than was returned (older without `since`, newer with it)' }),
  historyStart: Type.Integer({ description: 'Oldest offset still kept: console history is capped per VM and older output is let go. Offsets never move; a `since` before this reads from here (see `offset`)' }),
});

export const ConsoleSendBody = Type.Union([
  Type.Object({ text: Type.String({ minLength: 1, maxLength: 65536, description: 'Text sent as-is (include \\n or \\r to press enter)' }) }, { additionalProperties: false }),
  Type.Object({ keys: Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { minItems: 1, maxItems: 256, description: 'Key names: enter, tab, backspace, escape, up, down, left, right, home, end, delete, pageup, pagedown, f1–f12, ctrl-a … ctrl-z' }) }, { additionalProperties: false }),
]);

export const ConsoleSendResult = Type.Object({ bytes: Type.Integer() });

export const ExecuteBody = Type.Object({
  command: Type.String({ minLength: 1, maxLength: 16384, description: 'Shell command line run in the serial console shell' }),
  timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 30 })),
}, { additionalProperties: false });

export const ExecuteResult = Type.Object({
  output: Type.String({ description: 'What the command printed (stdout and stderr as the terminal showed them)' }),
  exitCode: Type.Union([Type.Integer(), Type.Null()], { description: 'null when timed out' }),
  timedOut: Type.Boolean(),
  durationMs: Type.Integer(),
});

export const ClearResult = Type.Object({ offset: Type.Integer({ description: 'Reads start here from now on' }) });

/** A console pattern that matched: what `waitFor` on start and the MCP `wait_for_console` tool return. */
export const ConsoleWaitResult = Type.Object({
  matched: Type.String({ description: 'The text that matched' }),
  offset: Type.Integer({ description: 'Console offset of the match' }),
  elapsedMs: Type.Integer(),
});
