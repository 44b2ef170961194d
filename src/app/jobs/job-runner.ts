import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../util/errors.js';
import { DomainError } from '../../domain/errors.js';
import { JOB_STREAMS, dropMarker, type Job, type JobStream } from '../../domain/job.js';
import { GuestCommandError, type GuestAgent } from '../../ports/guest-agent.js';
import type { JobOutputWriter } from '../../ports/jobs.js';
import { JOB_SCRIPT_NAME, REMOVE_JOB_DIR, SIGNAL_JOB } from './job-scripts.js';

/** Read from a guest output file per request (base64 on the wire: about 5.3 MiB per answer). */
const CHUNK = 4 * 1024 * 1024;
/** Chunks per stream per round, so one busy stream does not starve the other or the exit check. */
const CHUNKS_PER_ROUND = 4;
/** Pauses between rounds while nothing arrives: short at first (most output comes in bursts), then up to IDLE_MAX_MS. */
const IDLE_FIRST_MS = 5;
const IDLE_MAX_MS = 200;
/** While the agent does not answer or the VM is paused. */
const WAIT_MS = 1000;

/** What the runner needs from the job service. */
export interface RunnerHost {
  /** Runs fn against the VM's agent (domain errors for an agent that does not answer or a VM that is not running). */
  useAgent<T>(vmId: string, fn: (agent: GuestAgent) => Promise<T>): Promise<T>;
  /** The VM's state, or null when it was deleted. */
  vmState(vmId: string): string | null;
  openWriter(job: Job, stream: JobStream): Promise<JobOutputWriter>;
  /** The job changed (output, end): persist now or later, tell followers. */
  changed(job: Job, kind: 'output' | 'signal' | 'ended'): void;
  warn(job: Job, msg: string, err: unknown): void;
}

type Ending = { status: number | null; signal: number | null } | { lost: string };

/**
 * Follows one running job in its guest: copies what the command printed into the host files as it
 * arrives (reading the guest files on at the offset already copied: after a restart that is the host
 * file's size), learns how it ended, then removes its guest folder. One runner per running job.
 */
export class JobRunner {
  private readonly handles: Partial<Record<JobStream, number>> = {};
  private readonly offsets: Record<JobStream, number>;
  private readonly atEof: Record<JobStream, boolean> = { stdout: true, stderr: true };
  private readonly writers: Partial<Record<JobStream, JobOutputWriter>> = {};
  private stopped = false;
  private timeoutSent = false;
  readonly done: Promise<void>;

  constructor(readonly job: Job, private readonly host: RunnerHost) {
    // Until a stream reaches its cap, the host file holds exactly what was read from the guest file.
    this.offsets = { stdout: job.stdout.bytes, stderr: job.stderr.bytes };
    this.done = this.loop();
  }

  /** Daemon shutdown: stops following (the job goes on in the guest and is re-attached on the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    let idle = IDLE_FIRST_MS;
    try {
      while (!this.stopped && this.job.state === 'running') {
        const state = this.host.vmState(this.job.vmId);
        if (state === null) return;
        if (state === 'stopped' || state === 'error') { await this.end({ lost: `the VM ${state === 'error' ? 'failed' : 'stopped'} while the job ran` }, null); return; }
        if (state !== 'running') { await sleep(WAIT_MS); continue; }
        let got = 0;
        try {
          got = await this.host.useAgent(this.job.vmId, (agent) => this.round(agent));
        } catch (e) {
          if (!(e instanceof DomainError && (e.code === 'GUEST_AGENT_UNAVAILABLE' || e.code === 'INVALID_STATE'))) this.host.warn(this.job, 'following the job failed; trying again', e);
          await sleep(WAIT_MS);
          continue;
        }
        if (got > 0) { idle = IDLE_FIRST_MS; continue; }
        await sleep(idle);
        idle = Math.min(idle * 2, IDLE_MAX_MS);
      }
    } finally {
      for (const s of JOB_STREAMS) await this.writers[s]?.close().catch(() => undefined);
    }
  }

  /** One look at the guest: new output, then whether it ended. Resolves with the bytes read. */
  private async round(agent: GuestAgent): Promise<number> {
    let got = 0;
    for (const s of JOB_STREAMS) got += await this.pull(agent, s, CHUNKS_PER_ROUND);
    const ending = await this.ending(agent);
    if (ending) {
      // The command has ended, so its files are complete: everything left is copied before the end is told.
      for (const s of JOB_STREAMS) while (await this.pull(agent, s, CHUNKS_PER_ROUND) > 0) { /* drain */ }
      await this.end(ending, agent);
      return got;
    }
    await this.enforceTimeout(agent);
    return got;
  }

  private async pull(agent: GuestAgent, s: JobStream, maxChunks: number): Promise<number> {
    const info = this.job[s];
    if (info.capped) return 0;
    const handle = await this.handle(agent, s);
    if (handle === null) return 0;
    if (this.atEof[s]) {
      await agent.fileSeek(handle, this.offsets[s]);
      this.atEof[s] = false;
    }
    let got = 0;
    for (let i = 0; i < maxChunks && !info.capped; i++) {
      const r = await agent.fileRead(handle, CHUNK);
      if (r.data.length > 0) {
        this.offsets[s] += r.data.length;
        got += r.data.length;
        await this.store(s, r.data);
      }
      if (r.eof || r.data.length === 0) { this.atEof[s] = true; break; }
    }
    return got;
  }

  private async handle(agent: GuestAgent, s: JobStream): Promise<number | null> {
    const h = this.handles[s];
    if (h !== undefined) return h;
    try {
      const opened = await agent.fileOpen(`${this.job.guestDir}/${s}`, 'r');
      this.handles[s] = opened;
      this.atEof[s] = true;
      return opened;
    } catch (e) {
      // The wrapper has not made it yet.
      if (e instanceof GuestCommandError && e.errno === 'ENOENT') return null;
      throw e;
    }
  }

  /** Keeps at most the cap of each stream; the drop marker goes where the cut is. */
  private async store(s: JobStream, data: Buffer): Promise<void> {
    const info = this.job[s];
    const writer = this.writers[s] ??= await this.host.openWriter(this.job, s);
    const room = this.job.maxOutputBytes - info.bytes;
    if (data.length <= room) {
      await writer.append(data);
      info.bytes += data.length;
    } else {
      const marker = dropMarker(this.job.maxOutputBytes);
      await writer.append(Buffer.concat([data.subarray(0, Math.max(0, room)), marker]));
      info.bytes += Math.max(0, room) + marker.length;
      info.dropped += data.length - Math.max(0, room);
      info.capped = true;
    }
    this.host.changed(this.job, 'output');
  }

  /**
   * How the command ended, or null while it runs. The agent reports a process's end once and then
   * forgets it, so an unknown pid (reported to a daemon that died before recording it, or an agent that
   * restarted) is answered from the `exit` file the wrapper writes; without one, the job is still
   * running if its folder is there, and lost if not (the guest rebooted).
   */
  private async ending(agent: GuestAgent): Promise<Ending | null> {
    if (this.job.guestPid !== null) {
      try {
        const st = await agent.execStatus(this.job.guestPid);
        if (!st.exited) return null;
        const fromFile = await this.readSmall(agent, 'exit');
        if (fromFile !== null && /^\d+$/.test(fromFile.trim())) return { status: Number(fromFile.trim()), signal: null };
        return { status: st.exitCode, signal: st.signal };
      } catch (e) {
        if (!(e instanceof GuestCommandError)) throw e;
      }
    }
    const fromFile = await this.readSmall(agent, 'exit');
    if (fromFile !== null && /^\d+$/.test(fromFile.trim())) return { status: Number(fromFile.trim()), signal: null };
    if (await this.readSmall(agent, 'pid') !== null) return null;
    return { lost: 'the guest no longer has the job (it rebooted, or its folder was removed)' };
  }

  private async readSmall(agent: GuestAgent, name: string): Promise<string | null> {
    let h: number;
    try {
      h = await agent.fileOpen(`${this.job.guestDir}/${name}`, 'r');
    } catch (e) {
      if (e instanceof GuestCommandError && e.errno === 'ENOENT') return null;
      throw e;
    }
    try {
      return (await agent.fileRead(h, 64)).data.toString('utf8');
    } finally {
      await agent.fileClose(h).catch(() => undefined);
    }
  }

  private async enforceTimeout(agent: GuestAgent): Promise<void> {
    if (this.timeoutSent || this.job.timeoutSeconds === null) return;
    if (Date.now() - Date.parse(this.job.createdAt) < this.job.timeoutSeconds * 1000) return;
    this.timeoutSent = true;
    this.job.timedOut = true;
    this.job.signal = 9;
    this.host.changed(this.job, 'signal');
    await agent.exec({ path: '/bin/sh', args: ['-c', SIGNAL_JOB, JOB_SCRIPT_NAME, this.job.guestDir, 'KILL'], captureOutput: false });
  }

  private async end(ending: Ending, agent: GuestAgent | null): Promise<void> {
    const j = this.job;
    if (agent) {
      for (const s of JOB_STREAMS) {
        const h = this.handles[s];
        if (h === undefined) continue;
        // What a capped stream printed past its cap: the guest file's size tells, nothing more is read.
        if (j[s].capped) j[s].dropped = Math.max(j[s].dropped, await agent.fileSeek(h, 0, 'end').catch(() => 0) - j.maxOutputBytes);
        await agent.fileClose(h).catch(() => undefined);
      }
    }
    if ('lost' in ending) {
      j.state = 'lost';
      j.reason = ending.lost;
      j.exitCode = null;
    } else {
      j.state = 'exited';
      const sent = j.signal;
      // The wrapper's status is the shell's: 128 + n for a command that a signal ended.
      if (ending.signal !== null) { j.exitCode = null; j.signal = ending.signal; }
      else if (sent !== null && ending.status === 128 + sent) { j.exitCode = null; }
      else { j.exitCode = ending.status; j.signal = null; }
    }
    j.endedAt = new Date().toISOString();
    this.host.changed(j, 'ended');
    if (agent && j.state === 'exited') {
      await agent.exec({ path: '/bin/sh', args: ['-c', REMOVE_JOB_DIR, JOB_SCRIPT_NAME, j.guestDir], captureOutput: false })
        .catch((e: unknown) => this.host.warn(j, `removing the job folder in the guest failed: ${errorMessage(e)}`, e));
    }
  }
}
