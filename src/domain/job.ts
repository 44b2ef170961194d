/**
 * A durable exec job: a command run in a guest through its agent, whose output Grove copies into files
 * in the VM folder as it arrives, and whose end (exit code or signal) Grove records.
 *
 * running → exited (it ended: `exitCode`, or `signal` when Grove signalled it)
 * running → lost   (Grove can no longer learn how it ended: the VM stopped, the guest rebooted)
 */
export type JobState = 'running' | 'exited' | 'lost';
export type JobStream = 'stdout' | 'stderr';
export const JOB_STREAMS: readonly JobStream[] = ['stdout', 'stderr'];

export interface JobStreamInfo {
  /** Bytes kept in the host file (the drop marker included once the cap was reached). */
  bytes: number;
  /** Bytes the command printed beyond the cap, which were not kept. */
  dropped: number;
  capped: boolean;
}

export interface Job {
  id: string;
  vmId: string;
  argv: string[];
  state: JobState;
  /** The pid of the wrapper that runs the command, as the guest agent knows it. */
  guestPid: number | null;
  /** The folder in the guest holding the command's output files while it runs. */
  guestDir: string;
  openStdin: boolean;
  stdinClosed: boolean;
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  /** Why the job is lost, or how its end was learnt when not from the agent. */
  reason: string | null;
  maxOutputBytes: number;
  timeoutSeconds: number | null;
  stdout: JobStreamInfo;
  stderr: JobStreamInfo;
  createdAt: string;
  endedAt: string | null;
}

/** Written where a stream reached its cap; what follows it was dropped. */
export function dropMarker(cap: number): Buffer {
  return Buffer.from(`\n[grove: output cap of ${cap} bytes reached; the rest of this stream was dropped]\n`);
}
