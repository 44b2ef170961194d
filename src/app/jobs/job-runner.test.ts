import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropMarker, type Job } from '../../domain/job.js';
import { GuestCommandError, type GuestAgent, type GuestExecStatus } from '../../ports/guest-agent.js';
import { JobRunner, type RunnerHost } from './job-runner.js';
import { asText } from './output-text.js';

/** A guest of files and one process, enough for the runner: reads at a position, a status that may be forgotten. */
class FakeGuest {
  files = new Map<string, Buffer>();
  handles = new Map<number, { path: string; pos: number }>();
  next = 1;
  status: GuestExecStatus | 'forgotten' | 'running' = 'running';
  execs: string[][] = [];

  agent(): GuestAgent {
    const notFound = (p: string) => new GuestCommandError('guest-file-open', `failed to open file '${p}': No such file or directory`, 'ENOENT');
    return {
      fileOpen: async (path) => { if (!this.files.has(path)) throw notFound(path); this.handles.set(this.next, { path, pos: 0 }); return this.next++; },
      fileRead: async (h, count) => {
        const x = this.handles.get(h)!;
        const data = this.files.get(x.path)!.subarray(x.pos, x.pos + count);
        x.pos += data.length;
        return { data, eof: x.pos >= this.files.get(x.path)!.length };
      },
      fileSeek: async (h, offset, from) => { const x = this.handles.get(h)!; x.pos = from === 'end' ? this.files.get(x.path)!.length + offset : offset; return x.pos; },
      fileClose: async (h) => { this.handles.delete(h); },
      execStatus: async () => {
        if (this.status === 'forgotten') throw new GuestCommandError('guest-exec-status', 'Invalid parameter \'pid\'', null);
        if (this.status === 'running') return { exited: false, exitCode: null, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false };
        const s = this.status;
        this.status = 'forgotten';
        return s;
      },
      exec: async (req) => { this.execs.push([req.path, ...req.args]); return 99; },
    } as Partial<GuestAgent> as GuestAgent;
  }
}

function setup(guest: FakeGuest, over: Partial<Job> = {}) {
  const stored: Record<string, Buffer[]> = { stdout: [], stderr: [] };
  const ends: Job[] = [];
  const job: Job = {
    id: 'j1', vmId: 'vm1', argv: ['x'], state: 'running', guestPid: 42, guestDir: '/tmp/grove-jobs/j1', openStdin: false, stdinClosed: true,
    exitCode: null, signal: null, timedOut: false, reason: null, maxOutputBytes: 1000, timeoutSeconds: null,
    stdout: { bytes: 0, dropped: 0, capped: false }, stderr: { bytes: 0, dropped: 0, capped: false }, createdAt: new Date().toISOString(), endedAt: null,
    ...over,
  };
  const host: RunnerHost = {
    useAgent: (_vm, fn) => fn(guest.agent()),
    vmState: () => 'running',
    openWriter: async (_j, s) => ({ append: async (b) => { stored[s]!.push(Buffer.from(b)); }, close: async () => undefined }),
    changed: (j, kind) => { if (kind === 'ended') ends.push({ ...j }); },
    warn: () => undefined,
  };
  return { job, host, stored, ends };
}

test('output is copied as it grows, then the end from the agent; the guest folder is removed', async () => {
  const g = new FakeGuest();
  g.files.set('/tmp/grove-jobs/j1/stdout', Buffer.from('hello '));
  g.files.set('/tmp/grove-jobs/j1/stderr', Buffer.alloc(0));
  g.files.set('/tmp/grove-jobs/j1/pid', Buffer.from('43\n'));
  const { job, host, stored, ends } = setup(g);
  const r = new JobRunner(job, host);
  await new Promise((res) => setTimeout(res, 50));
  g.files.set('/tmp/grove-jobs/j1/stdout', Buffer.from('hello world'));
  g.files.set('/tmp/grove-jobs/j1/exit', Buffer.from('3\n'));
  g.status = { exited: true, exitCode: 3, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false };
  await r.done;
  assert.equal(Buffer.concat(stored['stdout']!).toString(), 'hello world');
  assert.deepEqual([ends[0]!.state, ends[0]!.exitCode], ['exited', 3]);
  assert.ok(g.execs.some((a) => a.includes('/tmp/grove-jobs/j1')), 'the guest folder is removed');
});

test('an exit the agent already reported (and forgot) is read from the exit file; a signal Grove sent is told apart', async () => {
  const g = new FakeGuest();
  g.files.set('/tmp/grove-jobs/j1/stdout', Buffer.from('abc'));
  g.files.set('/tmp/grove-jobs/j1/stderr', Buffer.alloc(0));
  g.files.set('/tmp/grove-jobs/j1/exit', Buffer.from('143\n'));
  g.status = 'forgotten';
  // Re-attached after a restart with 2 bytes already copied.
  const { job, host, stored, ends } = setup(g, { signal: 15, stdout: { bytes: 2, dropped: 0, capped: false } });
  await new JobRunner(job, host).done;
  assert.equal(Buffer.concat(stored['stdout']!).toString(), 'c');
  assert.deepEqual([ends[0]!.exitCode, ends[0]!.signal], [null, 15]);
});

test('no status, no exit file, no folder: lost', async () => {
  const g = new FakeGuest();
  g.status = 'forgotten';
  const { job, host, ends } = setup(g);
  await new JobRunner(job, host).done;
  assert.equal(ends[0]!.state, 'lost');
});

test('the cap keeps the head, then the marker; what was dropped is counted', async () => {
  const g = new FakeGuest();
  g.files.set('/tmp/grove-jobs/j1/stdout', Buffer.alloc(2500, 'a'));
  g.files.set('/tmp/grove-jobs/j1/stderr', Buffer.alloc(0));
  g.files.set('/tmp/grove-jobs/j1/exit', Buffer.from('0\n'));
  g.status = { exited: true, exitCode: 0, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false };
  const { job, host, stored, ends } = setup(g);
  await new JobRunner(job, host).done;
  assert.deepEqual(Buffer.concat(stored['stdout']!), Buffer.concat([Buffer.alloc(1000, 'a'), dropMarker(1000)]));
  assert.deepEqual(ends[0]!.stdout, { bytes: 1000 + dropMarker(1000).length, dropped: 1500, capped: true });
});

test('asText: UTF-8 as text, a character cut at the end left for the next read, else base64', () => {
  const b = Buffer.from('aé');
  assert.deepEqual(asText(b, true), { data: 'aé', encoding: 'utf8', used: 3 });
  assert.deepEqual(asText(b.subarray(0, 2), false), { data: 'a', encoding: 'utf8', used: 1 });
  assert.deepEqual(asText(b.subarray(0, 2), true), { data: b.subarray(0, 2).toString('base64'), encoding: 'base64', used: 2 });
  assert.deepEqual(asText(Buffer.from([0xff, 0x41]), false).encoding, 'base64');
});
