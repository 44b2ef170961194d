import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../util/errors.js';
import { DomainError, invalid } from '../../domain/errors.js';
import { JOB_STREAMS, type Job, type JobStream } from '../../domain/job.js';
import type { Vm } from '../../domain/vm.js';
import type { EventSink } from '../../ports/event-sink.js';
import { GuestCommandError, type GuestAgent } from '../../ports/guest-agent.js';
import type { JobOutputFiles, JobOutputWriter, JobRepo } from '../../ports/jobs.js';
import type { Logger } from '../../ports/logger.js';
import type { AgentService } from '../agent/agent-service.js';
import { decodeInput, type ExecResponse } from '../agent/exec-service.js';
import { encodeOutput, execArgv, type Encoding, type ExecSpec } from '../agent/guest-exec.js';
import type { DataLayout } from '../layout.js';
import type { VmService } from '../vm-service.js';
import { JobRunner, type RunnerHost } from './job-runner.js';
import { CLOSE_STDIN, GUEST_JOBS_DIR, JOB_RUN, JOB_SCRIPT_NAME, SIGNAL_JOB } from './job-scripts.js';

export interface JobRequest extends ExecSpec {
  /** Given to the command at the start; with openStdin more may follow through stdin(). */
  stdin?: string;
  stdinEncoding?: Encoding;
  /** Keep the command's input open for stdin() until it is closed (`eof`). */
  openStdin?: boolean;
  /** The command and everything it started are killed (SIGKILL) after this. */
  timeoutSeconds?: number;
  /** Per stream; output beyond it is dropped, with a marker where the cut is. */
  maxOutputBytes?: number;
}

export const JOB_LIMITS = {
  defaultMaxOutputBytes: 256 * 1024 * 1024,
  maxOutputBytes: 4 * 1024 * 1024 * 1024,
  /** One answer of the output endpoint. */
  defaultReadBytes: 1024 * 1024,
  maxReadBytes: 16 * 1024 * 1024,
} as const;

/** Signals a caller may send, by name (the numbers are Linux's on x86-64). */
export const JOB_SIGNALS = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, USR1: 10, USR2: 12, TERM: 15 } as const;
export type JobSignal = keyof typeof JOB_SIGNALS;

/** A stdin write is one pipe buffer's atomic unit: written whole or not at all, so a full pipe loses nothing. */
const STDIN_CHUNK = 4096;
/** How long a stdin write waits for a command that does not read its input. */
const STDIN_PATIENCE_MS = 60_000;
/** Output events and byte counts in the database: at most this often per job while output flows. */
const OUTPUT_EVENT_MS = 1000;

export interface JobServiceDeps {
  vms: VmService;
  agents: AgentService;
  repo: JobRepo;
  files: JobOutputFiles;
  layout: DataLayout;
  events: EventSink;
  log: Logger;
}

export interface OutputChunk {
  stream: JobStream;
  offset: number;
  data: Buffer;
}

/**
 * Durable exec jobs: a command started in the guest through its agent, whose output is copied into
 * files in the VM folder as it arrives (read by offset, live, and after any disconnect), with stdin,
 * signals, a timeout and output caps. The guest side is documented in job-scripts.ts; the following of
 * one job in job-runner.ts. On start-up every job still marked running is followed again.
 */
export class JobService {
  private readonly runners = new Map<string, JobRunner>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly lastOutput = new Map<string, number>();
  private readonly stdinQueues = new Map<string, Promise<unknown>>();
  private readonly host: RunnerHost;
  private closed = false;

  constructor(private readonly d: JobServiceDeps) {
    this.host = {
      useAgent: (vmId, fn) => d.agents.use(vmId, 'following a job', fn),
      vmState: (vmId) => d.vms.list().find((v) => v.id === vmId)?.state ?? null,
      openWriter: async (job, stream) => this.writer(job, stream),
      changed: (job, kind) => this.changed(job, kind),
      warn: (job, msg, err) => d.log.warn({ vm: job.vmId, job: job.id, err: errorMessage(err) }, msg),
    };
  }

  /** Re-attaches to every job the previous run left running (their output goes on from the host files' sizes). */
  async start(): Promise<number> {
    const running = this.d.repo.running();
    for (const job of running) {
      for (const s of ['stdout', 'stderr'] as const) if (!job[s].capped) job[s].bytes = await this.d.files.size(this.outputPath(job, s));
      this.follow(job);
    }
    return running.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    for (const r of this.runners.values()) this.d.repo.update(r.job);
    this.runners.clear();
  }

  // ---- starting -------------------------------------------------------------------------------

  async create(ref: string, req: JobRequest): Promise<Job> {
    const vm = this.d.agents.find(ref);
    const argv = execArgv(req);
    const maxOutputBytes = req.maxOutputBytes ?? JOB_LIMITS.defaultMaxOutputBytes;
    if (maxOutputBytes > JOB_LIMITS.maxOutputBytes) throw invalid(`maxOutputBytes is at most ${JOB_LIMITS.maxOutputBytes}`, { field: 'maxOutputBytes' });
    const input = req.stdin === undefined ? Buffer.alloc(0) : decodeInput(req.stdin, req.stdinEncoding ?? 'utf8');
    const openStdin = req.openStdin ?? false;
    const id = randomUUID();
    const guestDir = `${GUEST_JOBS_DIR}/${id}`;
    await this.d.files.makeDir(this.jobDir(vm.id, id));
    const pid = await this.d.agents.use(vm.id, `starting '${argv[0]}'`, (agent) => agent.exec({
      path: '/bin/sh', args: ['-c', JOB_RUN, JOB_SCRIPT_NAME, guestDir, openStdin ? '1' : '0', ...argv], captureOutput: false,
      // Always given, even empty: without it the command would read the agent's own stdin.
      ...(openStdin ? {} : { input }),
    }));
    const job: Job = {
      id, vmId: vm.id, argv, state: 'running', guestPid: pid, guestDir, openStdin, stdinClosed: !openStdin, exitCode: null, signal: null,
      timedOut: false, reason: null, maxOutputBytes, timeoutSeconds: req.timeoutSeconds ?? null,
      stdout: { bytes: 0, dropped: 0, capped: false }, stderr: { bytes: 0, dropped: 0, capped: false },
      createdAt: new Date().toISOString(), endedAt: null,
    };
    this.d.repo.insert(job);
    this.publish('job.started', vm, job, { argv });
    this.follow(job);
    if (openStdin && input.length > 0) await this.stdin(vm.id, id, input, false);
    return this.view(job);
  }

  /**
   * Starts a job and waits for its end at most `waitMs`: the exec answer, with the job's id, and
   * `detached` when it still runs (its output so far is in the answer). `onOutput` hears the output as it
   * arrives while waiting.
   */
  async runFor(ref: string, req: JobRequest, waitMs: number, maxOutputBytes: number, opts: { onOutput?: (c: OutputChunk) => void; signal?: AbortSignal } = {}): Promise<ExecResponse> {
    const started = performance.now();
    const created = await this.create(ref, req);
    const deadline = Date.now() + waitMs;
    if (opts.onOutput) {
      const onOutput = opts.onOutput;
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), waitMs);
      const onAbort = (): void => stop.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await Promise.all(JOB_STREAMS.map(async (s) => {
          for await (const c of this.followOutput(created.vmId, created.id, s, 0, stop.signal)) onOutput(c);
        }));
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }
    const job = await this.waitEnd(created.vmId, created.id, Math.max(0, deadline - Date.now()), opts.signal);
    const running = job.state === 'running';
    const [out, err] = await Promise.all(JOB_STREAMS.map((s) => this.read(created.vmId, created.id, s, 0, maxOutputBytes)));
    const truncated = out!.size > out!.nextOffset || err!.size > err!.nextOffset || job.stdout.capped || job.stderr.capped;
    const o = encodeOutput(out!.data, truncated);
    const e = encodeOutput(err!.data, truncated);
    return {
      exitCode: job.exitCode, signal: job.signal, stdout: o.data, stdoutEncoding: o.encoding, stderr: e.data, stderrEncoding: e.encoding,
      truncated, timedOut: running || job.timedOut, durationMs: Math.round(performance.now() - started), jobId: job.id, detached: running,
    };
  }

  private follow(job: Job): void {
    if (this.closed) return;
    const runner = new JobRunner(job, this.host);
    this.runners.set(job.id, runner);
    runner.done.then(
      () => { if (this.runners.get(job.id) === runner && job.state !== 'running') this.runners.delete(job.id); },
      (e: unknown) => this.d.log.error({ vm: job.vmId, job: job.id, err: errorMessage(e) }, 'following a job stopped; it is followed again on the next start'),
    );
  }

  // ---- reading --------------------------------------------------------------------------------

  list(ref: string): Job[] {
    const vm = this.d.vms.get(ref);
    return this.d.repo.list(vm.id).map((j) => this.view(this.runners.get(j.id)?.job ?? j));
  }

  get(ref: string, jobId: string): Job {
    return this.view(this.current(this.d.vms.get(ref), jobId));
  }

  /** Up to `limit` bytes of a stream from `since`; `ended` once the job is over and nothing follows. */
  async read(ref: string, jobId: string, stream: JobStream, since: number, limit: number = JOB_LIMITS.defaultReadBytes): Promise<{ job: Job; data: Buffer; offset: number; nextOffset: number; size: number; ended: boolean }> {
    const job = this.current(this.d.vms.get(ref), jobId);
    if (limit > JOB_LIMITS.maxReadBytes) throw invalid(`limit is at most ${JOB_LIMITS.maxReadBytes}`, { field: 'limit' });
    const path = this.outputPath(job, stream);
    const ended = job.state !== 'running';
    const data = await this.d.files.read(path, since, limit);
    const size = Math.max(await this.d.files.size(path), since + data.length);
    return { job: this.view(job), data, offset: since, nextOffset: since + data.length, size, ended: ended && since + data.length >= size };
  }

  /**
   * The stream's bytes from `since` as they arrive, until the job has ended and all is read (or `signal`
   * aborts). Output is read back from the host file, so a follower that falls behind or comes back later
   * gets exactly the same bytes.
   */
  async *followOutput(ref: string, jobId: string, stream: JobStream, since: number, signal?: AbortSignal): AsyncGenerator<OutputChunk> {
    const vm = this.d.vms.get(ref);
    const first = this.current(vm, jobId);
    const path = this.outputPath(first, stream);
    let offset = since;
    while (!signal?.aborted) {
      const wasRunning = this.current(vm, jobId).state === 'running';
      const data = await this.d.files.read(path, offset, JOB_LIMITS.defaultReadBytes);
      if (data.length > 0) {
        yield { stream, offset, data };
        offset += data.length;
        continue;
      }
      // The end is told only after the last output was written: nothing read after seeing it means all is read.
      if (!wasRunning) return;
      await this.nextChange(jobId, 1000, signal);
    }
  }

  /** The job once it has ended, or as it is after `ms`. */
  async waitEnd(ref: string, jobId: string, ms: number, signal?: AbortSignal): Promise<Job> {
    const vm = this.d.vms.get(ref);
    const deadline = Date.now() + ms;
    for (;;) {
      const job = this.current(vm, jobId);
      const left = deadline - Date.now();
      if (job.state !== 'running' || left <= 0 || signal?.aborted) return this.view(job);
      await this.nextChange(jobId, Math.min(left, 1000), signal);
    }
  }

  /** Resolves at the job's next change, after `ms`, or when `signal` aborts. */
  nextChange(jobId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(jobId);
      if (!set) { set = new Set(); this.waiters.set(jobId, set); }
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const s = this.waiters.get(jobId);
        s?.delete(done);
        if (s?.size === 0) this.waiters.delete(jobId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  // ---- input and signals ----------------------------------------------------------------------

  /** Feeds the command's input (jobs started with openStdin); `eof` closes it afterwards. */
  async stdin(ref: string, jobId: string, data: Buffer, eof: boolean): Promise<Job> {
    const vm = this.d.vms.get(ref);
    const job = this.current(vm, jobId);
    if (!job.openStdin) throw new DomainError('INVALID_STATE', `job ${job.id} was not started with openStdin: its input was closed at the start`, { field: 'openStdin' });
    this.assertRunning(job);
    // One writer at a time per job, in the order the requests came.
    const previous = this.stdinQueues.get(job.id) ?? Promise.resolve();
    const run = previous.then(async () => {
      if (job.stdinClosed) throw new DomainError('INVALID_STATE', `the input of job ${job.id} is closed`, { jobState: job.state });
      await this.d.agents.use(vm.id, 'writing to a job\'s input', async (agent) => {
        if (data.length > 0) await writeFifo(agent, `${job.guestDir}/stdin`, data);
        if (eof) {
          await agent.exec({ path: '/bin/sh', args: ['-c', CLOSE_STDIN, JOB_SCRIPT_NAME, job.guestDir, String(job.guestPid)], captureOutput: false });
          job.stdinClosed = true;
          this.d.repo.update(job);
        }
      });
    });
    this.stdinQueues.set(job.id, run.catch(() => undefined));
    await run;
    return this.view(job);
  }

  /** Sends a signal to the command and every process it started. */
  async kill(ref: string, jobId: string, signal: JobSignal = 'TERM'): Promise<Job> {
    const vm = this.d.vms.get(ref);
    const job = this.current(vm, jobId);
    this.assertRunning(job);
    await this.d.agents.use(vm.id, 'signalling a job', (agent) => agent.exec({
      path: '/bin/sh', args: ['-c', SIGNAL_JOB, JOB_SCRIPT_NAME, job.guestDir, signal], captureOutput: false,
    }));
    job.signal = JOB_SIGNALS[signal];
    this.d.repo.update(job);
    return this.view(job);
  }

  // ---- internals ------------------------------------------------------------------------------

  private current(vm: Vm, jobId: string): Job {
    const live = this.runners.get(jobId)?.job;
    const job = live ?? this.d.repo.get(jobId);
    if (!job || job.vmId !== vm.id) throw new DomainError('NOT_FOUND', `VM '${vm.name}' has no job '${jobId}'`, { job: jobId });
    return job;
  }

  private assertRunning(job: Job): void {
    if (job.state !== 'running') throw new DomainError('INVALID_STATE', `job ${job.id} is ${job.state}`, { jobState: job.state });
  }

  /** A copy: callers never hold the runner's own record. */
  private view(job: Job): Job {
    return { ...job, argv: [...job.argv], stdout: { ...job.stdout }, stderr: { ...job.stderr } };
  }

  private jobDir(vmId: string, jobId: string): string {
    return join(this.d.layout.vmDir(vmId), 'jobs', jobId);
  }

  outputPath(job: Pick<Job, 'vmId' | 'id'>, stream: JobStream): string {
    return join(this.jobDir(job.vmId, job.id), stream);
  }

  private async writer(job: Job, stream: JobStream): Promise<JobOutputWriter> {
    await this.d.files.makeDir(this.jobDir(job.vmId, job.id));
    return this.d.files.openWriter(this.outputPath(job, stream));
  }

  private changed(job: Job, kind: 'output' | 'signal' | 'ended'): void {
    const vm = this.d.vms.list().find((v) => v.id === job.vmId);
    if (kind === 'output') {
      const now = Date.now();
      if (now - (this.lastOutput.get(job.id) ?? 0) >= OUTPUT_EVENT_MS) {
        this.lastOutput.set(job.id, now);
        this.d.repo.update(job);
        if (vm) this.publish('job.output', vm, job, {});
      }
    } else {
      this.d.repo.update(job);
      if (kind === 'ended') {
        this.lastOutput.delete(job.id);
        if (vm) this.publish('job.exited', vm, job, { state: job.state, exitCode: job.exitCode, signal: job.signal, timedOut: job.timedOut, reason: job.reason });
      }
    }
    const set = this.waiters.get(job.id);
    if (set) for (const wake of [...set]) wake();
  }

  private publish(type: 'job.started' | 'job.output' | 'job.exited', vm: Vm, job: Job, data: Record<string, unknown>): void {
    this.d.events.publish({
      type, vmId: vm.id, vmName: vm.name,
      data: { jobId: job.id, stdoutBytes: job.stdout.bytes, stderrBytes: job.stderr.bytes, ...data },
    });
  }
}

/**
 * Writes to the job's FIFO. Opened read-write (O_RDWR never blocks on a FIFO, where write-only would
 * hang the agent while no reader is there); the agent makes the descriptor non-blocking, so a full pipe
 * is an error, after which the same whole chunk is written again once the command has read some.
 */
async function writeFifo(agent: GuestAgent, path: string, data: Buffer): Promise<void> {
  const deadline = Date.now() + STDIN_PATIENCE_MS;
  let handle: number | null = null;
  try {
    for (let at = 0; at < data.length;) {
      if (handle === null) {
        try {
          handle = await agent.fileOpen(path, 'r+');
        } catch (e) {
          // The wrapper has not made the FIFO yet.
          if (!(e instanceof GuestCommandError && e.errno === 'ENOENT') || Date.now() > deadline) throw e;
          await sleep(20);
          continue;
        }
      }
      const chunk = data.subarray(at, at + STDIN_CHUNK);
      try {
        const n = await agent.fileWrite(handle, chunk);
        at += n;
      } catch (e) {
        if (!(e instanceof GuestCommandError)) throw e;
        if (Date.now() > deadline) throw new DomainError('TIMEOUT', `the command did not read its input for ${STDIN_PATIENCE_MS / 1000} s`);
        // The stream's error flag is sticky: a fresh handle for the next attempt.
        await agent.fileClose(handle).catch(() => undefined);
        handle = null;
        await sleep(50);
      }
    }
  } finally {
    if (handle !== null) await agent.fileClose(handle).catch(() => undefined);
  }
}
