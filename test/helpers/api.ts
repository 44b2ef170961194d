import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { READY_LINE } from './guest.js';
import { waitFor, type TestDaemon } from './daemon.js';

export type Res = { status: number; body: any; headers: Headers };

/**
 * An RFC 9457 problem response: 4xx (never 5xx), `application/problem+json`, `{type,title,status,detail,code}`
 * with `status` equal to the HTTP status and an upper-snake `code`. Optionally pins status and code.
 */
export function assertProblem(r: Res, status?: number, code?: string, what = ''): void {
  const ctx = `${what} -> ${r.status} ${JSON.stringify(r.body)?.slice(0, 400)}`;
  assert.ok(r.status >= 400 && r.status < 500, `expected a 4xx: ${ctx}`);
  if (status !== undefined) assert.equal(r.status, status, `status: ${ctx}`);
  const ct = r.headers.get('content-type') ?? '';
  assert.match(ct, /^application\/problem\+json\b/, `content-type '${ct}': ${ctx}`);
  assert.equal(typeof r.body, 'object', `body is not JSON: ${ctx}`);
  assert.ok(r.body !== null, `body is null: ${ctx}`);
  for (const k of ['type', 'title', 'detail', 'code'] as const) {
    assert.equal(typeof r.body[k], 'string', `problem.${k} must be a string: ${ctx}`);
  }
  assert.ok(r.body.type.length > 0 && r.body.title.length > 0 && r.body.detail.length > 0, `empty problem member: ${ctx}`);
  assert.equal(r.body.status, r.status, `problem.status must equal the HTTP status: ${ctx}`);
  assert.match(r.body.code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, `problem.code must be UPPER_SNAKE: ${ctx}`);
  if (code !== undefined) assert.equal(r.body.code, code, `code: ${ctx}`);
}

export function assertOk(r: Res, status = 200, what = ''): any {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${JSON.stringify(r.body)?.slice(0, 600)}`);
  return r.body;
}

export async function getVm(d: TestDaemon, ref: string): Promise<any> {
  return assertOk(await d.call('GET', `/vms/${encodeURIComponent(ref)}`), 200, `GET /vms/${ref}`);
}

export async function waitForState(d: TestDaemon, ref: string, states: string | string[], timeoutMs = 30_000): Promise<any> {
  const want = Array.isArray(states) ? states : [states];
  let last: any;
  try {
    return await waitFor(`VM ${ref} in state ${want.join('|')}`, async () => {
      last = await getVm(d, ref);
      return want.includes(last.state) ? last : null;
    }, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/**
 * Starts a VM and waits for the guest's ready line (the shell is up on ttyS0 right after). With `acpi`
 * (default) it also waits until the guest's acpid listens to the power button: a button pressed before
 * that is lost in the guest, and a graceful stop would then sit out its whole timeout.
 */
export async function startReady(d: TestDaemon, ref: string, opts: { timeoutSeconds?: number; acpi?: boolean } = {}): Promise<any> {
  const r = await d.call('POST', `/vms/${encodeURIComponent(ref)}/start`, { waitFor: { console: READY_LINE, timeoutSeconds: opts.timeoutSeconds ?? 60 } });
  const body = assertOk(r, 200, `start ${ref}`);
  if (opts.acpi ?? true) await waitAcpiReady(d, ref);
  return body;
}

/** Polls the guest until acpid holds every input event device open. */
export async function waitAcpiReady(d: TestDaemon, ref: string): Promise<void> {
  const probe = 'a=$(ls -l /proc/$(pidof acpid)/fd 2>/dev/null | grep -c /dev/input/event); n=$(ls /dev/input/ | grep -c event); [ "$a" -ge 1 ] && [ "$a" -ge "$n" ] && echo ACPI-$((40+2))';
  await waitFor(`acpid of ${ref} to listen`, async () => {
    const r = await execute(d, ref, probe, { timeoutSeconds: 10, allowTimeout: true });
    return r.output.includes('ACPI-42');
  }, 20_000);
}

export interface ExecResult { output: string; exitCode: number | null; timedOut: boolean; durationMs: number }

/** console/execute; a timeout fails the caller unless `allowTimeout`. */
export async function execute(d: TestDaemon, ref: string, command: string, opts: { timeoutSeconds?: number; allowTimeout?: boolean } = {}): Promise<ExecResult> {
  const r = await d.call('POST', `/vms/${encodeURIComponent(ref)}/console/execute`, { command, timeoutSeconds: opts.timeoutSeconds ?? 30 });
  const body = assertOk(r, 200, `execute ${JSON.stringify(command)} on ${ref}`) as ExecResult;
  if (!opts.allowTimeout) assert.equal(body.timedOut, false, `execute ${JSON.stringify(command)} on ${ref} timed out: ${JSON.stringify(body)}`);
  return body;
}

/** The guest's view of a file, read with `cat` over the console. */
export async function catFile(d: TestDaemon, ref: string, file: string): Promise<string> {
  return (await execute(d, ref, `cat ${file}`)).output;
}

/** The PID of the VM's QEMU, from its runtime. */
export async function pidOf(d: TestDaemon, ref: string): Promise<number> {
  const rt = assertOk(await d.call('GET', `/vms/${encodeURIComponent(ref)}/runtime`), 200, `runtime of ${ref}`);
  assert.ok(Number.isInteger(rt.pid) && rt.pid > 0, `runtime pid: ${JSON.stringify(rt)}`);
  return rt.pid;
}

/** Force-stops a running, paused or failed VM and waits until it is stopped. */
export async function forceStop(d: TestDaemon, ref: string): Promise<any> {
  const body = assertOk(await d.call('POST', `/vms/${encodeURIComponent(ref)}/force-stop`), 200, `force-stop ${ref}`);
  await waitForState(d, ref, 'stopped');
  return body;
}

export async function readConsole(d: TestDaemon, ref: string, query = ''): Promise<{ data: string; offset: number; nextOffset: number; truncated: boolean }> {
  return assertOk(await d.call('GET', `/vms/${encodeURIComponent(ref)}/console${query ? `?${query}` : ''}`), 200, `read console ${query}`);
}

/** Everything the console holds from `since` on, following `nextOffset` page by page. */
export async function readConsoleFrom(d: TestDaemon, ref: string, since: number, extra = ''): Promise<{ data: string; nextOffset: number }> {
  let data = '';
  let at = since;
  for (let i = 0; i < 1000; i++) {
    const r = await readConsole(d, ref, `since=${at}&limit=1048576${extra ? `&${extra}` : ''}`);
    data += r.data;
    at = r.nextOffset;
    if (!r.truncated) return { data, nextOffset: at };
  }
  throw new Error('console never ended');
}

/** Polls the console from `since` until `text` (or a match of the RegExp) shows up. */
export async function waitForConsole(d: TestDaemon, ref: string, text: string | RegExp, since: number, timeoutMs = 60_000): Promise<string> {
  let seen = '';
  try {
    return await waitFor(`console of ${ref} to show ${String(text)}`, async () => {
      seen = (await readConsoleFrom(d, ref, since)).data;
      return (typeof text === 'string' ? seen.includes(text) : text.test(seen)) ? seen : null;
    }, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}; console tail: ${JSON.stringify(seen.slice(-600))}`);
  }
}

/** A process exists and is not a zombie (orphaned QEMUs may never be reaped in a container without init). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function waitForExit(pid: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(`pid ${pid} to exit`, async () => !isAlive(pid), timeoutMs);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the guest shell sits at its prompt and the console stopped growing, so offsets read now stay
 * the end of the console (execute returns at its end marker; the prompt is printed just after).
 */
export async function settleConsole(d: TestDaemon, ref: string, timeoutMs = 15_000): Promise<number> {
  let last = -1;
  return waitFor(`console of ${ref} to settle at a prompt`, async () => {
    const r = await readConsole(d, ref, 'limit=64');
    const atPrompt = /grove# (\x1b\[6n)?$/.test(r.data);
    const stable = r.nextOffset === last;
    last = r.nextOffset;
    if (atPrompt && stable) return r.nextOffset;
    await sleep(150);
    return null;
  }, timeoutMs);
}

/**
 * A request with full control: `body` is sent as is (no JSON encoding, no content-type added), `auth: false`
 * leaves the Authorization header out, and the request is aborted after `timeoutMs` (a route that wrongly
 * accepts bad input and starts streaming must fail the test, not hang it).
 */
export async function rawCall(
  d: TestDaemon,
  method: string,
  path: string,
  opts: { body?: string | Buffer; headers?: Record<string, string>; auth?: boolean; timeoutMs?: number } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...(opts.auth === false ? {} : { authorization: `Bearer ${d.token}` }), ...(opts.headers ?? {}) };
  const r = await fetch(`${d.api}${path}`, {
    method, headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, body: parsed, headers: r.headers };
}

/** Live (non-zombie) QEMU processes started for a VM, found by the `-uuid <id>` on their command line. */
export function qemuPidsOf(vmId: string): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try { entries = readdirSync('/proc'); } catch { return out; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const args = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const i = args.indexOf('-uuid');
      if (i !== -1 && args[i + 1] === vmId && /qemu/.test(args[0] ?? '') && isAlive(Number(e))) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}
