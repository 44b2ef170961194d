import { setTimeout as sleep } from 'node:timers/promises';
import { invalid } from '../../domain/errors.js';
import type { GuestAgent } from '../../ports/guest-agent.js';
import { IN_DIRECTORY, KILL_TREE, SCRIPT_NAME } from './guest-scripts.js';

export interface ExecSpec {
  argv?: string[];
  /** A shell command line, run by /bin/sh -c. */
  command?: string;
  /** Variables added to the agent's environment for this command. */
  env?: Record<string, string>;
  cwd?: string;
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The argv the agent runs, built from data only: a `command` goes to /bin/sh -c as one argument, `env`
 * through /usr/bin/env (which adds to the agent's environment instead of replacing it, as guest-exec's
 * own `env` would), `cwd` through a fixed sh program that takes the directory as `$1`. No user text is
 * ever spliced into a shell line.
 */
export function execArgv(spec: ExecSpec): string[] {
  if ((spec.argv === undefined) === (spec.command === undefined)) throw invalid('give either `argv` or `command`', { field: spec.argv === undefined ? 'argv' : 'command' });
  let argv = spec.command !== undefined ? ['/bin/sh', '-c', spec.command] : [...spec.argv!];
  if (argv.length === 0 || argv[0] === '') throw invalid('`argv` needs a program', { field: 'argv' });
  const env = Object.entries(spec.env ?? {});
  if (env.length > 0) {
    for (const [k] of env) if (!ENV_NAME.test(k)) throw invalid(`env: '${k}' is not a variable name`, { field: 'env' });
    // env(1) would take a program name with '=' for one more assignment.
    if (argv[0]!.includes('=')) throw invalid('with `env`, the program name may not contain \'=\'', { field: 'argv' });
    argv = ['/usr/bin/env', ...env.map(([k, v]) => `${k}=${v}`), ...argv];
  }
  if (spec.cwd !== undefined) {
    if (!spec.cwd.startsWith('/')) throw invalid('`cwd` must be an absolute guest path', { field: 'cwd' });
    argv = ['/bin/sh', '-c', IN_DIRECTORY, SCRIPT_NAME, spec.cwd, ...argv];
  }
  for (const a of argv) if (a.includes('\0')) throw invalid('arguments may not contain NUL bytes', { field: spec.command !== undefined ? 'command' : 'argv' });
  return argv;
}

export interface RunOptions {
  stdin?: Buffer;
  timeoutMs: number;
  /** Per stream; more is cut and reported as truncated. */
  maxOutputBytes: number;
}

export interface RunResult {
  exitCode: number | null;
  signal: number | null;
  stdout: Buffer;
  stderr: Buffer;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/**
 * Most commands end within milliseconds: for the first TIGHT_MS the status is asked again as soon as the
 * last answer came (what a hand-written loop does; each answer takes a round trip through the guest),
 * then with growing pauses up to POLL_MAX_MS.
 */
const TIGHT_MS = 50;
const POLL_FIRST_MS = 1;
const POLL_MAX_MS = 100;
/** How long a killed process tree may take to be reaped. */
const REAP_MS = 10_000;

/**
 * Runs one program through guest-exec and polls guest-exec-status until it ends. At the deadline the
 * process and everything it started are killed (SIGKILL), and what they printed so far is returned with
 * `timedOut`.
 */
export async function runInGuest(agent: GuestAgent, argv: string[], opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const pid = await agent.exec({ path: argv[0]!, args: argv.slice(1), captureOutput: true, ...(opts.stdin !== undefined ? { input: opts.stdin } : {}) });
  const deadline = started + opts.timeoutMs;
  let delay = POLL_FIRST_MS;
  let timedOut = false;
  for (;;) {
    const s = await agent.execStatus(pid);
    if (s.exited) {
      const [stdout, outCut] = cap(s.stdout, opts.maxOutputBytes);
      const [stderr, errCut] = cap(s.stderr, opts.maxOutputBytes);
      return {
        exitCode: timedOut ? null : s.exitCode, signal: s.signal, stdout, stderr,
        truncated: outCut || errCut || s.stdoutTruncated || s.stderrTruncated, timedOut, durationMs: Math.round(performance.now() - started),
      };
    }
    const now = performance.now();
    if (!timedOut && now >= deadline) {
      timedOut = true;
      await agent.exec({ path: '/bin/sh', args: ['-c', KILL_TREE, SCRIPT_NAME, String(pid)], captureOutput: false });
      delay = POLL_FIRST_MS;
    } else if (timedOut && now >= deadline + REAP_MS) {
      // The agent keeps the record; nothing more can be done from here.
      return { exitCode: null, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), truncated: false, timedOut, durationMs: Math.round(now - started) };
    }
    if (timedOut || now - started >= TIGHT_MS) {
      await sleep(timedOut ? delay : Math.min(delay, Math.max(0, deadline - now)));
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  }
}

function cap(b: Buffer, max: number): [Buffer, boolean] {
  return b.length > max ? [b.subarray(0, max), true] : [b, false];
}

export type Encoding = 'utf8' | 'base64';

/**
 * Output as text when it is valid UTF-8, else base64, and which of the two. A cut through a multi-byte
 * character at the end of truncated output does not count against UTF-8.
 */
export function encodeOutput(b: Buffer, truncated: boolean): { data: string; encoding: Encoding } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let trim = 0; trim <= (truncated ? 3 : 0) && trim <= b.length; trim++) {
    try {
      return { data: decoder.decode(b.subarray(0, b.length - trim)), encoding: 'utf8' };
    } catch { /* not UTF-8 (yet) */ }
  }
  return { data: b.toString('base64'), encoding: 'base64' };
}
