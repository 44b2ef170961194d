import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LoadConfig, LoadResult } from './load-worker.js';

export type { LoadResult } from './load-worker.js';

const WORKER = join(import.meta.dirname, 'load-worker.js');

/** Runs one autocannon load in a child process and returns its figures; throws on any failed request. */
export async function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const killer = setTimeout(() => child.kill('SIGKILL'), (cfg.durationS + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(killer);
  if (code !== 0) throw new Error(`load generator exited ${code}: ${err.trim()}`);
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as LoadResult;
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0 || r.requests === 0) {
    throw new Error(`load on ${cfg.url} had failures: ${JSON.stringify(r)}`);
  }
  return r;
}
