/**
 * End to end for durable exec jobs: the real daemon, QEMU (TCG) and the test guest's real qemu-ga.
 * Output byte-exact across a client that drops and re-attaches (50 MiB), a daemon SIGKILL while jobs run
 * (one ends meanwhile, and its status is even taken from the agent by someone else), stdin, kill,
 * timeouts, output caps, exec's detachOnTimeout, and the job events.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { assertOk, assertProblem, sleep, startReady } from '../helpers/api.js';
import { latestEventId, readEvents, waitForEvent } from '../helpers/events.js';
import { RawQga } from '../../bench/lib/raw-qga.js';
import { WsClient } from '../helpers/ws-client.js';
import { runCommand } from '../helpers/run.js';
import { REPO_ROOT } from '../helpers/guest.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
  await createGuestVm(d, 'jb', { memoryMB: 512 });
  await startReady(d, 'jb', { acpi: false });
  await waitFor('the agent', async () => (await d.call('GET', '/vms/jb')).body.agent?.connected === true, 90_000);
});
after(async () => { await d?.cleanup(); });

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const start = async (body: unknown): Promise<any> => assertOk(await d.call('POST', '/vms/jb/jobs', body), 202, `start ${JSON.stringify(body)}`).job;
const job = async (id: string): Promise<any> => assertOk(await d.call('GET', `/vms/jb/jobs/${id}`), 200, 'job');
const ended = (id: string, timeoutMs = 120_000): Promise<any> => waitFor(`job ${id} to end`, async () => {
  const j = await job(id);
  return j.state !== 'running' ? j : null;
}, timeoutMs);

async function rawOutput(id: string, stream = 'stdout', since = 0): Promise<Buffer> {
  const r = await fetch(`${d.api}/vms/jb/jobs/${id}/output?stream=${stream}&since=${since}`, { headers: { authorization: `Bearer ${d.token}`, accept: 'application/octet-stream' } });
  assert.equal(r.status, 200);
  return Buffer.from(await r.arrayBuffer());
}

async function guestExec(command: string): Promise<any> {
  return assertOk(await d.call('POST', '/vms/jb/exec', { command, timeoutSeconds: 120 }), 200, command);
}

test('a job: 202 with its id, output per stream, exit code, events started/exited', async () => {
  const since = await latestEventId(d);
  const j = await start({ command: 'echo out; echo err >&2; printf "\\303\\251t\\303\\251"; exit 3' });
  assert.equal(j.state, 'running');
  assert.match(j.id, /^[0-9a-f-]{36}$/);
  const done = await ended(j.id);
  assert.equal(done.state, 'exited');
  assert.equal(done.exitCode, 3);
  assert.equal(done.signal, null);
  assert.equal(done.stdout.bytes, Buffer.byteLength('out\nété'));
  assert.equal(done.stderr.bytes, 4);
  const out = assertOk(await d.call('GET', `/vms/jb/jobs/${j.id}/output`), 200, 'output');
  assert.deepEqual(out, { stream: 'stdout', data: 'out\nété', encoding: 'utf8', offset: 0, nextOffset: 9, size: 9, ended: true, state: 'exited' });
  const err = assertOk(await d.call('GET', `/vms/jb/jobs/${j.id}/output?stream=stderr&since=1`), 200, 'stderr');
  assert.equal(err.data, 'rr\n');
  // A read that ends inside a character leaves it for the next read.
  const cut = assertOk(await d.call('GET', `/vms/jb/jobs/${j.id}/output?since=4&limit=3`), 200, 'cut');
  assert.deepEqual([cut.data, cut.nextOffset, cut.ended], ['ét', 7, false]);
  const ev = await readEvents(d, since);
  const mine = ev.filter((e) => e.data.jobId === j.id).map((e) => e.type);
  assert.equal(mine[0], 'job.started');
  assert.equal(mine.at(-1), 'job.exited');
  assert.equal(ev.find((e) => e.type === 'job.exited' && e.data.jobId === j.id)!.data.exitCode, 3);
  const list = assertOk(await d.call('GET', '/vms/jb/jobs'), 200, 'list');
  assert.equal(list[0].id, j.id);
  // The guest folder is gone once the end is recorded.
  assert.equal((await guestExec(`test -e ${done.guestDir}; echo $?`)).stdout, '1\n');
});

/** Follows stdout over SSE from `since`, hashing as it goes; stops after `dropAfter` bytes (a client that goes away) or at the end. */
function followSse(id: string, since: number, dropAfter: number | null, hash: ReturnType<typeof createHash>): Promise<{ offset: number; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(`${d.api}/vms/jb/jobs/${id}/output?stream=stdout`, {
      headers: { authorization: `Bearer ${d.token}`, accept: 'text/event-stream', 'last-event-id': String(since) },
    });
    let offset = since;
    let buf = '';
    let done = false;
    req.on('error', (e) => { if (!done) reject(e); });
    req.on('response', (res) => {
      assert.equal(res.statusCode, 200);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let sep: number;
        while (!done && (sep = buf.indexOf('\n\n')) !== -1) {
          const rec = buf.slice(0, sep);
          buf = buf.slice(sep + 2);
          const lines = rec.split('\n');
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (event === 'output') {
            const o = JSON.parse(data) as { offset: number; data: string };
            assert.equal(o.offset, offset, 'records follow each other without gap or overlap');
            const bytes = Buffer.from(o.data, 'base64');
            hash.update(bytes);
            offset += bytes.length;
            if (dropAfter !== null && offset - since >= dropAfter) { done = true; req.destroy(); resolve({ offset, ended: false }); }
          } else if (event === 'end') {
            done = true;
            resolve({ offset, ended: true });
          }
        }
      });
      res.on('end', () => { if (!done) { done = true; resolve({ offset, ended: false }); } });
    });
    req.end();
  });
}

test('50 MiB of output, followed by a client that drops twice and re-attaches: byte-exact', { timeout: 900_000 }, async () => {
  const size = 50 * 1024 * 1024;
  const j = await start({ command: `head -c ${size} /dev/urandom | tee /tmp/j50` });
  const hash = createHash('sha256');
  let at = 0;
  for (let drop = 0; drop < 2; drop++) {
    const r = await followSse(j.id, at, 8 * 1024 * 1024, hash);
    assert.equal(r.ended, false);
    at = r.offset;
    await sleep(500);
  }
  const last = await followSse(j.id, at, null, hash);
  assert.equal(last.ended, true);
  assert.equal(last.offset, size);
  const done = await job(j.id);
  assert.deepEqual([done.state, done.exitCode, done.stdout.bytes, done.stdout.capped], ['exited', 0, size, false]);
  const inGuest = (await guestExec('sha256sum /tmp/j50; rm -f /tmp/j50')).stdout.split(' ')[0];
  assert.equal(hash.digest('hex'), inGuest);
  // The same bytes from the file in the VM folder, read raw.
  assert.equal(sha256(await rawOutput(j.id)), inGuest);
});

test('stdin: fed in pieces (text and binary), then closed', async () => {
  const j = await start({ command: 'od -An -tx1 | tr -s " \\n" " "; echo; echo done >&2', openStdin: true, stdin: 'ab' });
  assertOk(await d.call('POST', `/vms/jb/jobs/${j.id}/stdin`, { data: Buffer.from([0, 255, 10]).toString('base64'), encoding: 'base64' }), 200, 'stdin');
  assert.equal((await job(j.id)).state, 'running');
  const closed = assertOk(await d.call('POST', `/vms/jb/jobs/${j.id}/stdin`, { data: 'z', eof: true }), 200, 'stdin eof');
  assert.equal(closed.stdinClosed, true);
  const done = await ended(j.id);
  assert.equal(done.exitCode, 0);
  assert.equal((await rawOutput(j.id)).toString().trim(), '61 62 00 ff 0a 7a');
  assertProblem(await d.call('POST', `/vms/jb/jobs/${j.id}/stdin`, { data: 'late' }), 409, 'INVALID_STATE');
  // A job started without openStdin gets its stdin and then the end of it.
  const once = await start({ command: 'cat; echo end', stdin: 'x\n' });
  assert.equal((await ended(once.id)).exitCode, 0);
  assert.equal((await rawOutput(once.id)).toString(), 'x\nend\n');
  assertProblem(await d.call('POST', `/vms/jb/jobs/${once.id}/stdin`, { data: 'no' }), 409, 'INVALID_STATE');
});

test('kill: the command and what it started end; the job records the signal', async () => {
  const j = await start({ command: 'sleep 1000 & sleep 1000; echo never' });
  await sleep(500);
  const k = assertOk(await d.call('POST', `/vms/jb/jobs/${j.id}/kill`, {}), 200, 'kill');
  assert.equal(k.signal, 15);
  const done = await ended(j.id);
  assert.deepEqual([done.state, done.exitCode, done.signal], ['exited', null, 15]);
  assert.equal((await rawOutput(j.id)).toString(), '');
  assert.equal((await guestExec('ps | grep -c "[s]leep 1000"')).stdout.trim(), '0');
  assertProblem(await d.call('POST', `/vms/jb/jobs/${j.id}/kill`, { signal: 'KILL' }), 409, 'INVALID_STATE');
  assertProblem(await d.call('POST', `/vms/jb/jobs/${j.id}/kill`, { signal: 'STOP' }), 400, 'VALIDATION_FAILED');
});

test('timeoutSeconds kills it (SIGKILL, timedOut)', async () => {
  const j = await start({ command: 'echo started; sleep 1000', timeoutSeconds: 2 });
  const done = await ended(j.id);
  assert.deepEqual([done.exitCode, done.signal, done.timedOut], [null, 9, true]);
  assert.equal((await rawOutput(j.id)).toString(), 'started\n');
});

test('output cap: the rest is dropped, with a marker at the cut', async () => {
  const j = await start({ command: 'head -c 5000 /dev/zero | tr "\\0" a', maxOutputBytes: 1000 });
  const done = await ended(j.id);
  const marker = '\n[grove: output cap of 1000 bytes reached; the rest of this stream was dropped]\n';
  assert.deepEqual(done.stdout, { bytes: 1000 + marker.length, dropped: 4000, capped: true });
  assert.equal((await rawOutput(j.id)).toString(), 'a'.repeat(1000) + marker);
});

test('exec with detachOnTimeout: 202 with the job id and the output so far; the job then ends normally', async () => {
  const r = await d.call('POST', '/vms/jb/exec', { command: 'echo early; sleep 4; echo late; exit 5', timeoutSeconds: 1.5, detachOnTimeout: true });
  assert.equal(r.status, 202);
  assert.equal(r.body.detached, true);
  assert.equal(r.body.exitCode, null);
  assert.equal(r.body.stdout, 'early\n');
  const done = await ended(r.body.jobId);
  assert.equal(done.exitCode, 5);
  assert.equal((await rawOutput(r.body.jobId)).toString(), 'early\nlate\n');
  const quick = assertOk(await d.call('POST', '/vms/jb/exec', { command: 'echo quick', detachOnTimeout: true }), 200, 'quick');
  assert.deepEqual([quick.exitCode, quick.stdout, quick.detached], [0, 'quick\n', false]);
});

test('WebSocket follow from an offset', async () => {
  const j = await start({ command: 'for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done' });
  const ws = await WsClient.open(`${d.url.replace('http', 'ws')}/api/v1/vms/jb/jobs/${j.id}/output?since=6`, { authorization: `Bearer ${d.token}` });
  const closed = await ws.waitClosed(60_000);
  assert.equal(closed.code, 1000);
  const got = ws.json.filter((o) => o.type === 'output').map((o) => Buffer.from(o.data, 'base64'));
  const end = ws.json.find((o) => o.type === 'end').job;
  assert.equal(Buffer.concat(got).toString(), 'line2\nline3\nline4\nline5\n');
  assert.equal(end.exitCode, 0);
});

test('unknown job: 404 NOT_FOUND; a job of another VM is not found through this one', async () => {
  assertProblem(await d.call('GET', '/vms/jb/jobs/nope'), 404, 'NOT_FOUND');
  assertProblem(await d.call('GET', '/vms/nosuchvm/jobs'), 404, 'VM_NOT_FOUND');
  assertProblem(await d.call('POST', '/vms/jb/jobs', { command: 'true', bogus: 1 }), 400, 'VALIDATION_FAILED');
});

test('CLI: exec --detach prints the job id, job --follow streams it and exits with its code, jobs lists it', async () => {
  const grove = (args: string[]) => runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), ...args], { env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token } });
  const started = await grove(['exec', '--detach', 'jb', '--', 'sh', '-c', 'echo one; sleep 1; echo two; exit 2']);
  assert.equal(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  assert.match(id, /^[0-9a-f-]{36}$/);
  const followed = await grove(['job', 'jb', id, '--follow']);
  assert.equal(followed.code, 2);
  assert.equal(followed.stdout, 'one\ntwo\n');
  const listed = JSON.parse((await grove(['jobs', 'jb', '--json'])).stdout);
  assert.equal(listed[0].id, id);
  assert.equal(listed[0].exitCode, 2);
  const sleeper = (await grove(['run', 'jb', '--', 'sleep', '1000'])).stdout.trim();
  assert.equal((await grove(['job', 'jb', sleeper, '--kill', 'KILL'])).code, 0);
  assert.equal((await grove(['job', 'jb', sleeper, '--follow'])).code, 137);
});

test('daemon SIGKILL while jobs run: re-attached, output complete, exit codes kept (also when the agent already forgot them)', { timeout: 300_000 }, async () => {
  const long = await start({ command: 'for i in $(seq 1 12); do echo $i; sleep 1; done; exit 4' });
  const short = await start({ command: 'echo before; sleep 3; echo after; exit 7' });
  const forgotten = await start({ command: 'sleep 3; echo gone; exit 9' });
  await waitFor('output of the long job', async () => (await job(long.id)).stdout.bytes > 0, 60_000);
  await d.stop('SIGKILL');
  await sleep(6000);
  // Someone else asks the agent for the status first: qemu-ga reports an exit once, then forgets the pid.
  const qga = await RawQga.connect(join(d.dataDir, 'vms', long.vmId, 'qga.sock'));
  const st = await qga.execute('guest-exec-status', { pid: forgotten.guestPid });
  assert.equal(st.exited, true);
  qga.close();
  d = await d.restart();
  const s = await ended(short.id);
  assert.deepEqual([s.state, s.exitCode], ['exited', 7]);
  assert.equal((await rawOutput(short.id)).toString(), 'before\nafter\n');
  const f = await ended(forgotten.id);
  assert.deepEqual([f.state, f.exitCode], ['exited', 9]);
  assert.equal((await rawOutput(forgotten.id)).toString(), 'gone\n');
  const l = await ended(long.id);
  assert.deepEqual([l.state, l.exitCode], ['exited', 4]);
  assert.equal((await rawOutput(long.id)).toString(), Array.from({ length: 12 }, (_, i) => `${i + 1}\n`).join(''));
});

test('a job whose VM stops is lost, with the reason', async () => {
  const since = await latestEventId(d);
  const j = await start({ command: 'sleep 1000' });
  assertOk(await d.call('POST', '/vms/jb/force-stop', {}), 200, 'force-stop');
  const done = await ended(j.id);
  assert.equal(done.state, 'lost');
  assert.match(done.reason, /stopped/);
  const ev = await waitForEvent(d, (e) => e.type === 'job.exited' && e.data.jobId === j.id, { since, timeoutMs: 30_000 });
  assert.equal(ev.data.state, 'lost');
});
