import type { Job, JobState, JobStreamInfo } from '../domain/job.js';
import type { JobRepo } from '../ports/jobs.js';
import type { Db } from './db.js';

interface Row {
  id: string; vm_id: string; argv: string; state: string; guest_pid: number | null; guest_dir: string; open_stdin: number; stdin_closed: number;
  exit_code: number | null; signal: number | null; timed_out: number; reason: string | null; max_output_bytes: number; timeout_seconds: number | null;
  streams: string; created_at: string; ended_at: string | null;
}

function fromRow(r: Row): Job {
  const streams = JSON.parse(r.streams) as { stdout: JobStreamInfo; stderr: JobStreamInfo };
  return {
    id: r.id, vmId: r.vm_id, argv: JSON.parse(r.argv) as string[], state: r.state as JobState, guestPid: r.guest_pid, guestDir: r.guest_dir,
    openStdin: r.open_stdin === 1, stdinClosed: r.stdin_closed === 1, exitCode: r.exit_code, signal: r.signal, timedOut: r.timed_out === 1,
    reason: r.reason, maxOutputBytes: r.max_output_bytes, timeoutSeconds: r.timeout_seconds, stdout: streams.stdout, stderr: streams.stderr,
    createdAt: r.created_at, endedAt: r.ended_at,
  };
}

function toRow(j: Job): Row {
  return {
    id: j.id, vm_id: j.vmId, argv: JSON.stringify(j.argv), state: j.state, guest_pid: j.guestPid, guest_dir: j.guestDir, open_stdin: j.openStdin ? 1 : 0,
    stdin_closed: j.stdinClosed ? 1 : 0, exit_code: j.exitCode, signal: j.signal, timed_out: j.timedOut ? 1 : 0, reason: j.reason,
    max_output_bytes: j.maxOutputBytes, timeout_seconds: j.timeoutSeconds, streams: JSON.stringify({ stdout: j.stdout, stderr: j.stderr }),
    created_at: j.createdAt, ended_at: j.endedAt,
  };
}

export class SqliteJobRepo implements JobRepo {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      list: db.prepare<[string], Row>('SELECT * FROM jobs WHERE vm_id = ? ORDER BY created_at DESC, rowid DESC'),
      running: db.prepare<[], Row>("SELECT * FROM jobs WHERE state = 'running' ORDER BY created_at"),
      get: db.prepare<[string], Row>('SELECT * FROM jobs WHERE id = ?'),
      insert: db.prepare(`INSERT INTO jobs (id, vm_id, argv, state, guest_pid, guest_dir, open_stdin, stdin_closed, exit_code, signal, timed_out, reason,
        max_output_bytes, timeout_seconds, streams, created_at, ended_at) VALUES (@id, @vm_id, @argv, @state, @guest_pid, @guest_dir, @open_stdin, @stdin_closed,
        @exit_code, @signal, @timed_out, @reason, @max_output_bytes, @timeout_seconds, @streams, @created_at, @ended_at)`),
      update: db.prepare(`UPDATE jobs SET state = @state, guest_pid = @guest_pid, stdin_closed = @stdin_closed, exit_code = @exit_code, signal = @signal,
        timed_out = @timed_out, reason = @reason, streams = @streams, ended_at = @ended_at WHERE id = @id`),
    };
  }

  list(vmId: string): Job[] { return this.q.list.all(vmId).map(fromRow); }
  running(): Job[] { return this.q.running.all().map(fromRow); }
  get(id: string): Job | undefined { const r = this.q.get.get(id); return r && fromRow(r); }
  insert(job: Job): void { this.q.insert.run(toRow(job)); }

  update(job: Job): void {
    const { id, state, guest_pid, stdin_closed, exit_code, signal, timed_out, reason, streams, ended_at } = toRow(job);
    this.q.update.run({ id, state, guest_pid, stdin_closed, exit_code, signal, timed_out, reason, streams, ended_at });
  }
}
