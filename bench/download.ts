import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GroveClient, followEvents } from '../src/client/index.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon, type BenchDaemon } from './lib/daemon.js';
import { median, nowMs, resultLine, type BenchResult, type Target } from './lib/stats.js';

export interface DownloadBenchOptions {
  sizeMiB: number;
  /** Measured runs per side, the sides alternating (and their order flipping) each round. */
  runs: number;
  /** Unmeasured rounds first (warm page cache, warm connections). */
  warmup: number;
}

export const DOWNLOAD_DEFAULTS: DownloadBenchOptions = { sizeMiB: 256, runs: 5, warmup: 1 };

const TARGET: Target = { op: '>=', value: 0.9 };
const MiB = 2 ** 20;
const SIDES = ['grove-sha256', 'grove-sha512', 'curl', 'curl+sha256sum', 'curl+sha512sum'] as const;
type Side = (typeof SIDES)[number];

/**
 * (i) download of one image from a loopback HTTP server (the test mirror, in a process of its own):
 *   grove: POST /downloads {distro} until the download.completed event, with everything a pull does:
 *          the sums file fetched and parsed, the image streamed to images/<file>.part while it is hashed,
 *          the digest compared, the file fsynced and renamed into images/. Two catalog entries serve the
 *          same bytes under two names, one checked against a SHA256SUMS file, one against SHA512SUMS.
 *   curl:  `curl -sS --fail -o <data dir>/curl.out URL` for the same file from the same server, timed from
 *          spawn to exit (it neither hashes nor syncs).
 * Each figure is MiB/s over the median time; the ratio is grove ÷ curl (target >= 0.9 for each). For
 * information, what verifying costs the curl way: curl, then `sha256sum` / `sha512sum` of the file.
 */
export async function benchDownload(o: DownloadBenchOptions = DOWNLOAD_DEFAULTS): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'grove-bench-download-'));
  const removeDir = onCleanup(`dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const source = join(dir, 'source.img');
  const digests = await writeRandomFile(source, o.sizeMiB * MiB);
  const files = { '/a/bench-256.qcow2': source, '/b/bench-512.qcow2': source };
  const texts = { '/a/SHA256SUMS': `${digests.sha256} *bench-256.qcow2\n`, '/b/SHA512SUMS': `${digests.sha512}  bench-512.qcow2\n` };
  const { port, stop } = await startServer({ files, texts });
  const url = `http://127.0.0.1:${port}`;

  const catalog = join(dir, 'catalog.json');
  const entry = (id: string, path: string, sums: string) => ({ id, name: id, version: '1', arch: 'x86_64', format: 'qcow2', url: `${url}${path}`, checksumUrl: `${url}${sums}` });
  const fh = await open(catalog, 'w');
  await fh.writeFile(JSON.stringify({ distros: [entry('bench-256', '/a/bench-256.qcow2', '/a/SHA256SUMS'), entry('bench-512', '/b/bench-512.qcow2', '/b/SHA512SUMS')] }));
  await fh.close();

  const bd = await startBenchDaemon('download', { env: { GROVE_CATALOG: catalog } });
  try {
    const client = new GroveClient({ url: bd.daemon.url, token: bd.token });
    const curlOut = join(bd.dataDir, 'curl.out');
    const measure: Record<Side, () => Promise<number>> = {
      'grove-sha256': () => viaGrove(bd, client, 'bench-256', digests.sha256),
      'grove-sha512': () => viaGrove(bd, client, 'bench-512', digests.sha512),
      curl: () => viaCurl(`${url}/a/bench-256.qcow2`, curlOut, o.sizeMiB * MiB),
      'curl+sha256sum': () => viaCurl(`${url}/a/bench-256.qcow2`, curlOut, o.sizeMiB * MiB, ['sha256sum', digests.sha256]),
      'curl+sha512sum': () => viaCurl(`${url}/a/bench-256.qcow2`, curlOut, o.sizeMiB * MiB, ['sha512sum', digests.sha512]),
    };
    const times: Record<Side, number[]> = { 'grove-sha256': [], 'grove-sha512': [], curl: [], 'curl+sha256sum': [], 'curl+sha512sum': [] };
    for (let r = 0; r < o.warmup + o.runs; r++) {
      const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        const ms = await measure[side]();
        if (r >= o.warmup) times[side].push(ms);
      }
    }
    const rate = (ms: number): number => (o.sizeMiB * 1000) / ms;
    const curlRate = rate(median(times.curl));
    const runs = (side: Side): string => times[side].map((ms) => rate(ms).toFixed(0)).join(', ');
    return (['grove-sha256', 'grove-sha512'] as const).map((side) => {
      const g = rate(median(times[side]));
      const alg = side === 'grove-sha256' ? 'SHA-256' : 'SHA-512';
      const sum = side === 'grove-sha256' ? 'curl+sha256sum' : 'curl+sha512sum';
      const verified = rate(median(times[sum]));
      const res = resultLine(`download (${alg})`, `${g.toFixed(0)} MiB/s`, `curl ${curlRate.toFixed(0)} MiB/s`, g / curlRate, TARGET);
      res.details.push(
        `  ${o.sizeMiB} MiB from a loopback server (its own process), ${o.runs} runs per side after ${o.warmup} warm-up round(s), sides alternating; MiB/s over the median time`,
        `  grove (POST /downloads → download.completed: sums file, streamed write + ${alg}, digest check, fsync, rename) runs: ${runs(side)} MiB/s`,
        `  curl -o (no hashing, no fsync) runs: ${runs('curl')} MiB/s`,
        `  for information, curl then ${sum.slice(5)} of the file: ${verified.toFixed(0)} MiB/s (runs: ${runs(sum)}); grove ÷ that: ${(g / verified).toFixed(2)}`,
      );
      return res;
    });
  } finally {
    await bd.close();
    await stop();
    await removeDir();
  }
}

/** One pull through the daemon: from POST to the completed event; the image is removed first. */
async function viaGrove(bd: BenchDaemon, client: GroveClient, distro: string, digest: string): Promise<number> {
  const gone = await bd.client.call('DELETE', `/images/${distro}`);
  if (gone.status !== 204 && gone.status !== 404) throw new Error(`DELETE /images/${distro}: HTTP ${gone.status}`);
  const ac = new AbortController();
  let connected!: () => void;
  const ready = new Promise<void>((r) => { connected = r; });
  const it = followEvents(client, { types: 'download.completed,download.failed', signal: ac.signal, onConnected: () => connected() })[Symbol.asyncIterator]();
  let next = it.next();
  try {
    await Promise.race([ready, next]);
    const t0 = nowMs();
    const dl = await bd.client.ok('POST', '/downloads', { distro }, 202) as { id: string };
    for (;;) {
      const r = await next;
      if (r.done) throw new Error('event stream ended');
      next = it.next();
      const data = r.value.data as Record<string, unknown>;
      if (data['downloadId'] !== dl.id) continue;
      const t1 = nowMs();
      if (r.value.type !== 'download.completed' || data['digest'] !== digest) throw new Error(`download of ${distro} did not complete: ${JSON.stringify(data)}`);
      return t1 - t0;
    }
  } finally {
    ac.abort();
    void next.catch(() => undefined);
  }
}

/** curl to a file, then optionally `<sum tool> FILE` whose digest must be the given one; the time of both. */
async function viaCurl(url: string, out: string, size: number, verify?: [tool: string, digest: string]): Promise<number> {
  await rm(out, { force: true });
  const t0 = nowMs();
  const curl = await exec('curl', ['-sS', '--fail', '-o', out, url]);
  if (curl.code !== 0) throw new Error(`curl exited ${curl.code}`);
  if (verify) {
    const sum = await exec(verify[0], [out]);
    if (sum.code !== 0 || !sum.stdout.startsWith(verify[1])) throw new Error(`${verify[0]} did not confirm the digest: ${sum.stdout}`);
  }
  const ms = nowMs() - t0;
  if ((await stat(out)).size !== size) throw new Error('curl wrote a file of the wrong size');
  return ms;
}

function exec(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout }));
  });
}

async function writeRandomFile(path: string, bytes: number): Promise<{ sha256: string; sha512: string }> {
  const h256 = createHash('sha256');
  const h512 = createHash('sha512');
  const fh = await open(path, 'w');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let at = 0; at < bytes; at += buf.length) {
      const chunk = buf.subarray(0, Math.min(buf.length, bytes - at));
      randomFillSync(chunk);
      h256.update(chunk);
      h512.update(chunk);
      await fh.write(chunk);
    }
  } finally {
    await fh.close();
  }
  return { sha256: h256.digest('hex'), sha512: h512.digest('hex') };
}

/** The mirror in a child process; resolves once it listens. */
async function startServer(cfg: { files: Record<string, string>; texts: Record<string, string> }): Promise<{ port: number; stop: () => Promise<void> }> {
  const script = join(import.meta.dirname, 'lib', 'image-server-child.js');
  const p = spawn(process.execPath, [script, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const stop = onCleanup('mirror server', async () => { p.stdin!.end(); p.kill('SIGTERM'); await exited; });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: p.stdout! });
    rl.once('line', (l) => { rl.close(); resolve(l); });
    p.once('exit', (code) => reject(new Error(`mirror server exited (${code}) before listening`)));
  });
  return { port: (JSON.parse(line) as { port: number }).port, stop };
}
