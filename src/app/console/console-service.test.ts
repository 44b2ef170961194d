import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Vm } from '../../domain/vm.js';
import type { ConsoleLogReader, VmPaths } from '../../ports/hypervisor.js';
import type { EventSink } from '../../ports/event-sink.js';
import type { VmRepo } from '../../ports/repos.js';
import { DomainError } from '../../domain/errors.js';
import { ConsoleService } from './console-service.js';

const MiB = 1024 * 1024;
/** Larger than any single read a bounded console may make; the old wait asked for the whole history. */
const READ_LIMIT = 4 * MiB;

/**
 * A stopped VM's console history of `size` bytes, generated on demand so the test itself holds none of
 * it: 'x' everywhere, `marker` at `markerAt`. Any read larger than READ_LIMIT fails the test.
 */
function virtualLog(size: number, marker: string, markerAt: number, start = 0) {
  let largest = 0;
  const log: ConsoleLogReader = {
    size: async () => size,
    start: async () => start,
    trim: async (_p, before) => Math.max(start, before),
    read: async (_p: VmPaths, from: number, length: number) => {
      largest = Math.max(largest, length);
      if (length > READ_LIMIT) throw new Error(`unbounded console read of ${length} bytes`);
      const n = Math.max(0, Math.min(length, size - from));
      const buf = Buffer.alloc(n, 'x');
      const m = Buffer.from(marker);
      for (let i = 0; i < m.length; i++) {
        const at = markerAt + i - from;
        if (at >= 0 && at < n) buf[at] = m[i]!;
      }
      return buf;
    },
  };
  return { log, largest: () => largest };
}

function service(log: ConsoleLogReader, clearOffset = 0): ConsoleService {
  const vms = { get: () => undefined, consoleClearOffset: () => clearOffset, setConsoleClearOffset: () => undefined } as unknown as VmRepo;
  const events = { publish: () => undefined } as unknown as EventSink;
  return new ConsoleService({ vms, events, log, paths: () => ({}) as VmPaths });
}

const stopped = { id: 'vm1', name: 'web', state: 'stopped' } as Vm;

test('waiting from offset 0 on a huge history reads it in bounded slices and finds a match at its end', async () => {
  const size = 256 * MiB;
  const v = virtualLog(size, 'READY 42', size - 100);
  const r = await service(v.log).waitForOutput(stopped, '/READY \\d+/', { since: 0, timeoutMs: 1000 });
  assert.deepEqual({ matched: r.matched, offset: r.offset }, { matched: 'READY 42', offset: size - 100 });
  assert.ok(v.largest() <= READ_LIMIT, `largest read ${v.largest()}`);
});

test('a match split across two history slices is still found, at its exact offset', async () => {
  const size = 2 * MiB;
  const at = 256 * 1024 - 3;
  const v = virtualLog(size, 'login:', at);
  const r = await service(v.log).waitForOutput(stopped, 'login:', { since: 0, timeoutMs: 1000 });
  assert.equal(r.offset, at);
});

test('no match in a huge stopped history: INVALID_STATE after a bounded scan, not an out-of-memory', async () => {
  const v = virtualLog(128 * MiB, '', 0);
  await assert.rejects(service(v.log).waitForOutput(stopped, 'never', { since: 0, timeoutMs: 1000 }), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE');
  assert.ok(v.largest() <= READ_LIMIT);
});

test('a read from before the kept history starts where it starts and says so', async () => {
  const v = virtualLog(10 * MiB, 'kept', 9 * MiB, 9 * MiB);
  const r = await service(v.log).read(stopped, { since: 0, limit: 4, stripAnsi: false });
  assert.deepEqual(r, { data: 'kept', offset: 9 * MiB, nextOffset: 9 * MiB + 4, truncated: true, historyStart: 9 * MiB });
  const tail = await service(v.log).read(stopped, { limit: 2 * MiB, stripAnsi: false });
  assert.equal(tail.offset, 9 * MiB);
  assert.equal(tail.truncated, false);
});

test('a wait from before the kept history searches only what is kept', async () => {
  const v = virtualLog(4 * MiB, 'gone', 10, 2 * MiB);
  await assert.rejects(service(v.log).waitForOutput(stopped, 'gone', { since: 0, timeoutMs: 1000 }), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE');
});

test('a running VM whose output passes the history cap has its oldest output let go, offsets kept', async () => {
  const trims: number[] = [];
  const log: ConsoleLogReader = {
    size: async () => 0, start: async () => 0, read: async () => Buffer.alloc(0),
    trim: async (_p, before) => { trims.push(before); return before; },
  };
  const vms = { get: () => undefined, consoleClearOffset: () => 0, setConsoleClearOffset: () => undefined } as unknown as VmRepo;
  const events = { publish: () => undefined } as unknown as EventSink;
  const svc = new ConsoleService({ vms, events, log, paths: () => ({}) as VmPaths, historyBytes: 1 * MiB });
  let emit: (chunk: Buffer, offset: number) => void = () => undefined;
  svc.attach({ id: 'vm1', name: 'web' }, { offset: 0, onData: (l) => { emit = l; return () => undefined; }, write: async () => undefined, close: () => undefined });
  let at = 0;
  for (let i = 0; i < 40; i++) {
    emit(Buffer.alloc(64 * 1024, 'y'), at);
    at += 64 * 1024;
    await new Promise((r) => setImmediate(r));
  }
  svc.detach('vm1');
  // Every cap/16 (the slack) of new output, not on every chunk.
  assert.ok(trims.length >= 10 && trims.length <= 15, `trimmed ${trims.length} times`);
  assert.deepEqual([...trims].sort((a, b) => a - b), trims);
  // Each trim keeps exactly the cap behind the output seen at that moment.
  for (const t of trims) assert.equal((t + MiB) % (64 * 1024), 0);
  assert.ok(at - trims.at(-1)! <= MiB + 128 * 1024);
});
