import { invalid } from '../../domain/errors.js';
import type { AgentService } from './agent-service.js';
import type { JobService } from '../jobs/job-service.js';
import { encodeOutput, execArgv, runInGuest, type Encoding, type ExecSpec } from './guest-exec.js';

export interface ExecRequest extends ExecSpec {
  /** Fed to the command's standard input (then closed); text, or base64 with stdinEncoding. */
  stdin?: string;
  stdinEncoding?: Encoding;
  timeoutSeconds?: number;
  maxOutputBytes?: number;
  /** Run as a durable job and, past the timeout, answer with its id instead of killing it. */
  detachOnTimeout?: boolean;
}

export interface ExecResponse {
  exitCode: number | null;
  signal: number | null;
  stdout: string;
  stdoutEncoding: Encoding;
  stderr: string;
  stderrEncoding: Encoding;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
  /** With detachOnTimeout: the job the command runs as. */
  jobId?: string;
  /** The command outlived the timeout and goes on as job `jobId`. */
  detached?: boolean;
}

export const EXEC_LIMITS = {
  defaultTimeoutSeconds: 30,
  defaultMaxOutputBytes: 1024 * 1024,
  /** qemu-ga itself keeps no more than this per stream. */
  maxOutputBytes: 16 * 1024 * 1024,
} as const;

/** Commands run in the guest through its agent (not the serial console): exit code, separate streams, binary-safe. */
export class ExecService {
  constructor(private readonly agents: AgentService, private readonly jobs?: JobService) {}

  async exec(ref: string, req: ExecRequest): Promise<ExecResponse> {
    if (req.detachOnTimeout && this.jobs) {
      const { detachOnTimeout: _, timeoutSeconds, maxOutputBytes, ...spec } = req;
      return this.jobs.runFor(ref, spec, (timeoutSeconds ?? EXEC_LIMITS.defaultTimeoutSeconds) * 1000, maxOutputBytes ?? EXEC_LIMITS.defaultMaxOutputBytes);
    }
    // An unknown VM is a 404 before anything about the request is judged.
    const vm = this.agents.find(ref);
    const argv = execArgv(req);
    const maxOutputBytes = req.maxOutputBytes ?? EXEC_LIMITS.defaultMaxOutputBytes;
    if (maxOutputBytes > EXEC_LIMITS.maxOutputBytes) throw invalid(`maxOutputBytes is at most ${EXEC_LIMITS.maxOutputBytes}`, { field: 'maxOutputBytes' });
    const stdin = req.stdin === undefined ? undefined : decodeInput(req.stdin, req.stdinEncoding ?? 'utf8');
    const what = `running '${req.command ?? req.argv![0]}'`;
    const r = await this.agents.use(vm.id, what, (agent) => runInGuest(agent, argv, {
      timeoutMs: (req.timeoutSeconds ?? EXEC_LIMITS.defaultTimeoutSeconds) * 1000, maxOutputBytes,
      ...(stdin !== undefined ? { stdin } : {}),
    }));
    const out = encodeOutput(r.stdout, r.truncated);
    const err = encodeOutput(r.stderr, r.truncated);
    return {
      exitCode: r.exitCode, signal: r.signal, stdout: out.data, stdoutEncoding: out.encoding, stderr: err.data, stderrEncoding: err.encoding,
      truncated: r.truncated, timedOut: r.timedOut, durationMs: r.durationMs,
    };
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bytes given as text or base64; malformed base64 is refused, never decoded leniently. */
export function decodeInput(data: string, encoding: Encoding, field = 'stdin'): Buffer {
  if (encoding === 'utf8') return Buffer.from(data, 'utf8');
  if (!BASE64.test(data)) throw invalid(`${field} is not valid base64`, { field });
  return Buffer.from(data, 'base64');
}
