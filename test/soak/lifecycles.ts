// Parallel VM lifecycles: each worker owns one VM slot and cycles a fresh VM through
// create → start → exec → clone (+ delete the clone) → pause → resume → snapshot → exec → restore → stop → delete,
// over REST (even workers) or MCP with the official SDK client (odd workers), until the deadline.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { errorMessage } from '../../src/util/errors.js';
import type { TestDaemon } from '../helpers/daemon.js';
import { READY_LINE, guestFiles } from '../helpers/guest.js';

export type Op = 'create' | 'start' | 'exec' | 'clone' | 'deleteClone' | 'pause' | 'resume' | 'snapshot' | 'restore' | 'stop' | 'delete';

/** One answer: HTTP status (MCP: the problem's status, 200 for a result), or 0 when no answer came in time. */
export interface Answer { status: number; code?: string; detail?: string; body?: any }

export interface OpRecord { worker: number; face: 'rest' | 'mcp'; op: Op; vm: string; status: number; code?: string; detail?: string; ms: number }

export interface LifecycleOptions {
  workers: number;
  durationMs: number;
  memoryMB: number;
  /** Pause between two cycles of one worker, and the stagger between workers' first cycles. */
  pacingMs: number;
  /** Longest wait for one answer before it counts as unanswered. */
  answerTimeoutMs: number;
  /** Stop each worker after this many cycles even before the deadline (the warm-up round). */
  maxCycles?: number;
  /** VM names are <prefix>-<worker>-<cycle>. */
  prefix?: string;
  log?: (line: string) => void;
}

export interface LifecycleResult {
  records: OpRecord[];
  cycles: number;
  /** Cycles cut short by a failed operation (their VM is cleaned up by force). */
  brokenCycles: number;
  durationMs: number;
}

interface Face {
  kind: 'rest' | 'mcp';
  do(op: Op, vm: string, arg?: string): Promise<Answer>;
  close(): Promise<void>;
}

function restFace(d: TestDaemon, memoryMB: number, timeoutMs: number): Face {
  const g = guestFiles();
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    try {
      const r = await fetch(`${d.api}${path}`, {
        method,
        headers: { authorization: `Bearer ${d.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await r.text();
      let json: any = null;
      try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
      return r.ok ? { status: r.status, body: json } : { status: r.status, code: json?.code, detail: json?.detail ?? text.slice(0, 300) };
    } catch (e) {
      return { status: 0, detail: errorMessage(e) };
    }
  };
  const vm = (n: string): string => `/vms/${encodeURIComponent(n)}`;
  return {
    kind: 'rest',
    do(op, n, arg) {
      switch (op) {
        case 'create': return call('POST', '/vms', { name: n, kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB, diskGB: 1 });
        case 'start': return call('POST', `${vm(n)}/start`, { waitFor: { console: READY_LINE, timeoutSeconds: timeoutMs / 1000 - 10 } });
        case 'exec': return call('POST', `${vm(n)}/console/execute`, { command: `echo soak-${arg}`, timeoutSeconds: 60 });
        case 'clone': return call('POST', `${vm(n)}/clone`, { name: arg });
        case 'deleteClone': case 'delete': return call('DELETE', vm(n));
        case 'pause': return call('POST', `${vm(n)}/pause`, {});
        case 'resume': return call('POST', `${vm(n)}/resume`, {});
        case 'snapshot': return call('POST', `${vm(n)}/snapshots`, { name: arg });
        case 'restore': return call('POST', `${vm(n)}/snapshots/${encodeURIComponent(arg!)}/restore`, {});
        case 'stop': return call('POST', `${vm(n)}/stop`, { timeoutSeconds: 20, force: true });
      }
    },
    close: async () => undefined,
  };
}

async function mcpFace(d: TestDaemon, memoryMB: number, timeoutMs: number): Promise<Face> {
  const g = guestFiles();
  const client = new Client({ name: 'grove-soak', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${d.token}` } } }));
  const tool = async (name: string, args: Record<string, unknown>): Promise<Answer> => {
    try {
      const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs })) as CallToolResult;
      if (!r.isError) return { status: 200, body: r.structuredContent };
      const text = r.content.find((x) => x.type === 'text');
      const p = text && text.type === 'text' ? JSON.parse(text.text) as { status?: number; code?: string; detail?: string } : {};
      return { status: p.status ?? 500, code: p.code ?? 'NO_PROBLEM', detail: p.detail ?? JSON.stringify(r.content).slice(0, 300) };
    } catch (e) {
      // A JSON-RPC error or no answer within the timeout: both are failures of the transport, not tool errors.
      return { status: 0, detail: errorMessage(e) };
    }
  };
  return {
    kind: 'mcp',
    do(op, vm, arg) {
      switch (op) {
        case 'create': return tool('create_vm', { name: vm, kernel: 'vmlinuz', initrd: 'initramfs.gz', cmdline: g.cmdline, memoryMB, diskGB: 1 });
        case 'start': return tool('start_vm', { vm, waitFor: { console: READY_LINE, timeoutSeconds: timeoutMs / 1000 - 10 } });
        case 'exec': return tool('console_execute', { vm, command: `echo soak-${arg}`, timeoutSeconds: 60 });
        case 'clone': return tool('clone_vm', { vm, name: arg });
        case 'deleteClone': case 'delete': return tool('delete_vm', { vm });
        case 'pause': return tool('pause_vm', { vm });
        case 'resume': return tool('resume_vm', { vm });
        case 'snapshot': return tool('create_snapshot', { vm, name: arg });
        case 'restore': return tool('restore_snapshot', { vm, snapshot: arg });
        case 'stop': return tool('stop_vm', { vm, timeoutSeconds: 20, force: true });
      }
    },
    close: () => client.close(),
  };
}

/** What each answer must carry for the cycle to go on (a 2xx alone is not enough for exec). */
function checkAnswer(op: Op, a: Answer, arg: string | undefined): string | null {
  if (a.status < 200 || a.status >= 300) return `${a.status} ${a.code ?? ''} ${a.detail ?? ''}`.trim();
  if (op === 'exec' && !String(a.body?.output ?? '').includes(`soak-${arg}`)) return `exec output lacks soak-${arg}: ${JSON.stringify(a.body).slice(0, 200)}`;
  return null;
}

export async function runLifecycles(d: TestDaemon, opts: LifecycleOptions): Promise<LifecycleResult> {
  const records: OpRecord[] = [];
  const started = Date.now();
  const deadline = started + opts.durationMs;
  let cycles = 0;
  let brokenCycles = 0;
  const faces: Face[] = [];
  for (let w = 0; w < opts.workers; w++) faces.push(w % 2 === 0 ? restFace(d, opts.memoryMB, opts.answerTimeoutMs) : await mcpFace(d, opts.memoryMB, opts.answerTimeoutMs));

  const worker = async (w: number): Promise<void> => {
    const face = faces[w]!;
    await new Promise((r) => setTimeout(r, w * opts.pacingMs));
    for (let k = 0; Date.now() < deadline && k < (opts.maxCycles ?? Infinity); k++) {
      const name = `${opts.prefix ?? 'soak'}-${w}-${k}`;
      const clone = `${name}-c`;
      const steps: Array<[Op, string, string?]> = [
        ['create', name], ['start', name], ['exec', name, `${w}-${k}-a`], ['clone', name, clone], ['deleteClone', clone],
        ['pause', name], ['resume', name], ['snapshot', name, 's1'], ['exec', name, `${w}-${k}-b`], ['restore', name, 's1'],
        ['stop', name], ['delete', name],
      ];
      let failed = false;
      for (const [op, vm, arg] of steps) {
        const t0 = Date.now();
        const a = await face.do(op, vm, arg);
        const bad = checkAnswer(op, a, arg);
        const rec: OpRecord = { worker: w, face: face.kind, op, vm, status: a.status, ms: Date.now() - t0 };
        if (a.code) rec.code = a.code;
        if (bad) rec.detail = bad;
        records.push(rec);
        if (bad) {
          opts.log?.(`worker ${w} (${face.kind}) ${op} ${vm}: ${bad}`);
          failed = true;
          break;
        }
      }
      cycles++;
      if (failed) {
        brokenCycles++;
        // Leave nothing behind for the final checks: the failure itself is what the run reports.
        await d.call('DELETE', `/vms/${clone}?force=true`).catch(() => undefined);
        await d.call('DELETE', `/vms/${name}?force=true`).catch(() => undefined);
      }
      opts.log?.(`worker ${w} (${face.kind}) cycle ${k} ${failed ? 'BROKEN' : 'done'} at ${Math.round((Date.now() - started) / 1000)} s`);
      await new Promise((r) => setTimeout(r, opts.pacingMs));
    }
  };
  try {
    await Promise.all(faces.map((_, w) => worker(w)));
  } finally {
    for (const f of faces) await f.close();
  }
  return { records, cycles, brokenCycles, durationMs: Date.now() - started };
}
