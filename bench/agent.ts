import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import type { Vm } from '../src/domain/vm.js';
import { READY_LINE } from '../test/helpers/guest.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { launchRaw, prepareRaw, waitForConsoleText } from './lib/raw-qemu.js';
import { RawQga } from './lib/raw-qga.js';
import { fmtMs, fmtRatio, median, resultLine, timed, type BenchResult } from './lib/stats.js';

export interface AgentOptions {
  /** Measured `true` execs per side, in alternating blocks (1: strictly alternating, which keeps load swings off the ratio). */
  execRuns: number;
  execBlock: number;
  /** Size of the file moved each way, and how many transfers per side (alternating). */
  fileMiB: number;
  fileRuns: number;
}

export const AGENT_DEFAULTS: AgentOptions = { execRuns: 100, execBlock: 1, fileMiB: 64, fileRuns: 3 };

/** The chunk the reference reads and writes: the same as Grove's, so the comparison is of everything else. */
const CHUNK = 4 * 1024 * 1024;
const GUEST_FILE = '/tmp/bench.bin';

/**
 * (i) guest agent, against the same agent commands sent by hand (RawQga) on the agent socket of a QEMU
 * launched by hand with the daemon's argv (QEMU serves one client per socket, and the daemon holds its
 * VM's). Both guests are the test guest with Debian's qemu-ga, 512 MiB (the file lands in tmpfs).
 *   agent-exec:     POST /vms/:id/exec {argv:["true"]} round trip, vs guest-exec {path:"true",
 *                   capture-output:true} then guest-exec-status until exited (no pause between polls).
 *   agent-upload:   PUT /vms/:id/files/content of 64 MiB (random), vs guest-file-open "w", guest-file-write
 *                   of 4 MiB base64 chunks, guest-file-close.
 *   agent-download: GET /vms/:id/files/content of that file, vs guest-file-open "r", guest-file-read of
 *                   4 MiB until eof (base64 decoded), guest-file-close.
 * MiB/s is the size over the time from request sent to the last byte (download) or the answer (upload).
 */
export async function benchAgent(o: AgentOptions = AGENT_DEFAULTS): Promise<BenchResult[]> {
  const bd = await startBenchDaemon('agent');
  try {
    const vm = (await bd.createGuestVm('bench-agent', { memoryMB: 512 })) as Vm;
    const refVm = (await bd.createGuestVm('bench-agent-ref', { memoryMB: 512 })) as Vm;
    await bd.startReady(vm.id);
    const p = await prepareRaw(refVm, join(bd.dataDir, 'vms', refVm.id, 'disk.qcow2'), { qemuBinary: bd.cfg.qemuBinary });
    const raw = await launchRaw(p);
    await waitForConsoleText(raw.spec.paths.consoleOut, READY_LINE, { timeoutMs: 120_000 });
    const ref = await RawQga.connect(raw.spec.paths.guestAgentSocket);
    onCleanup('raw agent client', () => ref.close());
    await waitAgent(bd, vm.id);

    // ---- exec -------------------------------------------------------------------------------------
    const grove: number[] = [];
    const hand: number[] = [];
    let polls = 0;
    const groveExec = async (): Promise<void> => {
      let body: any;
      grove.push(await timed(async () => { body = await bd.client.ok('POST', `/vms/${vm.id}/exec`, { argv: ['true'] }); }));
      if (body.exitCode !== 0) throw new Error(`exec true answered ${JSON.stringify(body)}`);
    };
    const handExec = async (): Promise<void> => {
      hand.push(await timed(async () => {
        const { pid } = await ref.execute('guest-exec', { path: 'true', arg: [], 'capture-output': true });
        for (;;) {
          polls++;
          const s = await ref.execute('guest-exec-status', { pid });
          if (s.exited) { if (s.exitcode !== 0) throw new Error(`true exited ${s.exitcode}`); return; }
        }
      }));
    };
    for (let i = 0; i < 5; i++) { await groveExec(); await handExec(); }
    grove.length = 0; hand.length = 0; polls = 0;
    for (let b = 0; b < o.execRuns / o.execBlock; b++) {
      const order = b % 2 === 0 ? [groveExec, handExec] : [handExec, groveExec];
      for (const f of order) for (let i = 0; i < o.execBlock; i++) await f();
    }
    const ge = median(grove);
    const he = median(hand);
    const execRes = resultLine('agent-exec', `median ${fmtMs(ge)}`, `by hand median ${fmtMs(he)}`, ge / he, { op: '<=', value: 1.2 });
    execRes.details.push(
      `  ${grove.length} execs of \`true\` per side in blocks of ${o.execBlock}, alternating; ratio of medians`,
      `  grove p10/p90 ${fmtMs(pct(grove, 10))}/${fmtMs(pct(grove, 90))}; by hand p10/p90 ${fmtMs(pct(hand, 10))}/${fmtMs(pct(hand, 90))}; by hand ${(polls / hand.length).toFixed(1)} status polls per exec`,
    );

    // ---- files ------------------------------------------------------------------------------------
    if (o.fileRuns === 0) return [execRes];
    const data = randomBytes(o.fileMiB * 1024 * 1024);
    const want = sha256(data);
    const up = { grove: [] as number[], hand: [] as number[] };
    const down = { grove: [] as number[], hand: [] as number[] };
    const groveUp = async (): Promise<void> => { up.grove.push(await timed(() => putFile(bd, vm.id, GUEST_FILE, data))); };
    const groveDown = async (): Promise<void> => {
      let got = '';
      down.grove.push(await timed(async () => { got = await getFileSha(bd, vm.id, GUEST_FILE); }));
      if (got !== want) throw new Error('grove download: checksum differs');
    };
    const handUp = async (): Promise<void> => {
      up.hand.push(await timed(async () => {
        const h = await ref.execute('guest-file-open', { path: GUEST_FILE, mode: 'w' });
        for (let off = 0; off < data.length; off += CHUNK) await ref.execute('guest-file-write', { handle: h, 'buf-b64': data.subarray(off, off + CHUNK).toString('base64') });
        await ref.execute('guest-file-close', { handle: h });
      }));
    };
    const handDown = async (): Promise<void> => {
      const hash = createHash('sha256');
      down.hand.push(await timed(async () => {
        const h = await ref.execute('guest-file-open', { path: GUEST_FILE, mode: 'r' });
        for (;;) {
          const r = await ref.execute('guest-file-read', { handle: h, count: CHUNK });
          hash.update(Buffer.from(r['buf-b64'], 'base64'));
          if (r.eof) break;
        }
        await ref.execute('guest-file-close', { handle: h });
      }));
      if (hash.digest('hex') !== want) throw new Error('hand download: checksum differs');
    };
    for (let i = 0; i < o.fileRuns; i++) {
      const order = i % 2 === 0 ? [groveUp, groveDown, handUp, handDown] : [handUp, handDown, groveUp, groveDown];
      for (const f of order) await f();
    }
    const rate = (ms: number): number => o.fileMiB / (ms / 1000);
    const results = [execRes];
    for (const [name, t] of [['agent-upload', up], ['agent-download', down]] as const) {
      const g = rate(median(t.grove));
      const h = rate(median(t.hand));
      const r = resultLine(name, `${g.toFixed(1)} MiB/s`, `by hand ${h.toFixed(1)} MiB/s`, g / h, { op: '>=', value: 0.8 });
      r.details.push(`  ${o.fileMiB} MiB, ${o.fileRuns} transfers per side, alternating; median times grove ${t.grove.map(fmtMs).join(', ')}; by hand ${t.hand.map(fmtMs).join(', ')}; ratio ${fmtRatio(g / h)}`);
      results.push(r);
    }
    return results;
  } finally {
    await bd.close();
  }
}

async function waitAgent(bd: BenchDaemon, id: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const vm = await bd.client.ok('GET', `/vms/${id}`);
    if (vm.agent?.connected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the daemon never saw the guest agent');
}

function pct(v: number[], p: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function request(bd: BenchDaemon, method: string, path: string, onResponse: (res: http.IncomingMessage, done: (e?: Error) => void) => void, body?: Buffer): Promise<void> {
  const url = new URL(`${bd.api}${path}`);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method, headers: { authorization: `Bearer ${bd.token}`, ...(body ? { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } : {}) },
    }, (res) => onResponse(res, (e) => (e ? reject(e) : resolve())));
    req.on('error', reject);
    req.end(body);
  });
}

function putFile(bd: BenchDaemon, id: string, path: string, data: Buffer): Promise<void> {
  return request(bd, 'PUT', `/vms/${id}/files/content?path=${encodeURIComponent(path)}`, (res, done) => {
    let text = '';
    res.on('data', (c: Buffer) => { text += c.toString(); });
    res.on('end', () => done(res.statusCode === 201 ? undefined : new Error(`upload: HTTP ${res.statusCode} ${text}`)));
  }, data);
}

async function getFileSha(bd: BenchDaemon, id: string, path: string): Promise<string> {
  const hash = createHash('sha256');
  await request(bd, 'GET', `/vms/${id}/files/content?path=${encodeURIComponent(path)}`, (res, done) => {
    if (res.statusCode !== 200) { done(new Error(`download: HTTP ${res.statusCode}`)); return; }
    res.on('data', (c: Buffer) => hash.update(c));
    res.on('end', () => done());
    res.on('error', done);
  });
  return hash.digest('hex');
}
