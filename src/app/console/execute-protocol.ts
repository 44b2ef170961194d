/**
 * Running a command over a serial shell and knowing where its output starts and ends, and its exit code.
 *
 * The whole request is one input line, `printf BEGIN; <command>; printf END:$?`, because a terminal
 * echoes what is typed: were the end marker on a second line, a line-editing shell would echo it (with a
 * prompt) in the middle of the output. The markers are printed with `%s_%s` from two words, so the echo
 * of the line itself (`BEGIN tok`) never contains the marker (`BEGIN_tok`) the parser looks for.
 * A multi-line command is sent as printf octal escapes through `eval`, so it still fits on one line.
 */
export interface ExecuteFrame {
  token: string;
  input: string;
  begin: string;
  end: string;
}

const BEGIN = '__GROVE_BEGIN';
const END = '__GROVE_END';

/** Above this, a command is sent in chunks: busybox's line editor keeps only about 1000 characters a line. */
const MAX_TYPED = 512;
/** Bytes per chunk line: 4 characters each as octal escapes, plus the assignment, stays under 800. */
const CHUNK_BYTES = 160;
const VAR = '__grove_cmd';

export function frameCommand(command: string, token: string): ExecuteFrame {
  if (!/^[A-Za-z0-9]+$/.test(token)) throw new Error('token must be alphanumeric');
  const markers = (body: string) => `printf '%s_%s\\n' ${BEGIN} ${token}; ${body}; printf '%s_%s:%d\\n' ${END} ${token} "$?"\n`;
  // Ctrl-U first: drop any half-typed line so it cannot be glued to ours.
  if (!needsEval(command) && Buffer.byteLength(command) <= MAX_TYPED) {
    return { token, input: `\x15${markers(command)}`, begin: `${BEGIN}_${token}`, end: `${END}_${token}:` };
  }
  // The command is rebuilt in a shell variable, a short line at a time, then run with eval. `printf x`
  // guards the trailing newlines that command substitution would strip from a chunk.
  const bytes = Buffer.from(command, 'utf8');
  const lines = [`\x15${VAR}=`];
  for (let i = 0; i < bytes.length; i += CHUNK_BYTES) {
    lines.push(`${VAR}="$${VAR}$(printf '${octal(bytes.subarray(i, i + CHUNK_BYTES))}'; printf x)"; ${VAR}="\${${VAR}%x}"`);
  }
  return { token, input: `${lines.join('\n')}\n${markers(`eval "$${VAR}"`)}`, begin: `${BEGIN}_${token}`, end: `${END}_${token}:` };
}

/**
 * Typed as-is (readable for whoever watches the console) unless splicing it between the markers would
 * change its meaning: several lines, a comment that would swallow the end marker, or a trailing
 * operator or backslash that would join it. Those go through eval, where a syntax error is reported
 * with its exit code instead of leaving the shell waiting for more input.
 */
function needsEval(command: string): boolean {
  return /[\r\n#]/.test(command) || /[;&|\\]\s*$/.test(command) || command.trim() === '';
}

function octal(b: Buffer): string {
  return [...b].map((x) => `\\${x.toString(8).padStart(3, '0')}`).join('');
}

export type ParseResult =
  | { done: false; started: boolean; output: string }
  | { done: true; output: string; exitCode: number };

/** Looks for the frame's markers in console text received since the command was sent. */
export function parseExecuteOutput(text: string, frame: ExecuteFrame): ParseResult {
  const b = findMarkerLine(text, frame.begin);
  if (b === -1) return { done: false, started: false, output: '' };
  const rest = text.slice(b);
  const e = rest.indexOf(frame.end);
  if (e === -1) return { done: false, started: true, output: clean(rest) };
  // The status counts only once its line has ended: a read may stop between the 4 and the 2 of 42.
  const m = /^(\d+)\r*\n/.exec(rest.slice(e + frame.end.length));
  if (!m) return { done: false, started: true, output: clean(rest.slice(0, e)) };
  return { done: true, output: clean(rest.slice(0, e)), exitCode: Number(m[1]) };
}

/** Index just past the marker's line end, or -1. The marker must be followed by its newline. */
function findMarkerLine(text: string, marker: string): number {
  let from = 0;
  for (;;) {
    const i = text.indexOf(marker, from);
    if (i === -1) return -1;
    const after = text.slice(i + marker.length);
    const nl = /^\r*\n/.exec(after);
    if (nl) return i + marker.length + nl[0].length;
    if (after.length < 2) return -1;
    from = i + 1;
  }
}

/** Terminals turn \n into \r\n; callers want the program's own bytes. One trailing newline is the frame's. */
function clean(s: string): string {
  return s.replace(/\r+\n/g, '\n').replace(/\r$/, '');
}
