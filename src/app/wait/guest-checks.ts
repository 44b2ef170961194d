import type { GuestAgent } from '../../ports/guest-agent.js';
import { GuestCommandError } from '../../ports/guest-agent.js';
import { runInGuest } from '../agent/guest-exec.js';

/** What one attempt at a guest-side condition found: the evidence, or why not yet. */
export type CheckOutcome = { ok: true; evidence: string } | { ok: false; reason: string };

/** /proc/net/tcp is a few lines per socket; more than this is not read (the port is then reported as not seen). */
const PROC_NET_MAX_BYTES = 1024 * 1024;
const TCP_LISTEN = '0A';
const COMMAND_OUTPUT_BYTES = 4096;

/**
 * A TCP port is open when the guest kernel lists a listening socket on it, read from /proc/net/tcp and
 * tcp6 through the agent's file calls: this needs no tool in the guest (busybox or not) and does not
 * connect to the service (a connection would count as a client in its logs).
 */
export async function portListening(agent: GuestAgent, port: number): Promise<CheckOutcome> {
  for (const [file, family] of [['/proc/net/tcp', 'tcp'], ['/proc/net/tcp6', 'tcp6']] as const) {
    let text: string;
    try {
      text = (await readGuestFile(agent, file, PROC_NET_MAX_BYTES)).toString('latin1');
    } catch (e) {
      if (e instanceof GuestCommandError) continue; // no IPv6 in this guest
      throw e;
    }
    const local = listeningAddress(text, port);
    if (local !== null) return { ok: true, evidence: `${family} socket listening on ${local}` };
  }
  return { ok: false, reason: `nothing listens on TCP port ${port} in the guest` };
}

/** The local address (as /proc shows it, hex) of a socket listening on `port`, or null. */
export function listeningAddress(procNetTcp: string, port: number): string | null {
  const want = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of procNetTcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    if (cols[3] !== TCP_LISTEN || local === undefined) continue;
    if (local.slice(local.lastIndexOf(':') + 1).toUpperCase() === want) return `${local.slice(0, local.lastIndexOf(':'))}:${port}`;
  }
  return null;
}

export async function fileExists(agent: GuestAgent, path: string): Promise<CheckOutcome> {
  try {
    const h = await agent.fileOpen(path, 'r');
    await agent.fileClose(h).catch(() => undefined);
    return { ok: true, evidence: `${path} exists` };
  } catch (e) {
    if (e instanceof GuestCommandError) return { ok: false, reason: `${path}: ${e.desc}` };
    throw e;
  }
}

/** One run of a shell line; exit 0 is the condition met, its output the evidence. */
export async function commandSucceeds(agent: GuestAgent, command: string, timeoutMs: number): Promise<CheckOutcome> {
  const r = await runInGuest(agent, ['/bin/sh', '-c', command], { timeoutMs, maxOutputBytes: COMMAND_OUTPUT_BYTES });
  const out = r.stdout.toString('utf8').trim();
  if (r.exitCode === 0) return { ok: true, evidence: out === '' ? 'exit 0' : `exit 0: ${out.slice(0, 500)}` };
  const err = r.stderr.toString('utf8').trim();
  return { ok: false, reason: r.timedOut ? 'timed out' : `exit ${r.exitCode ?? `signal ${r.signal}`}${err ? `: ${err.slice(0, 200)}` : ''}` };
}

async function readGuestFile(agent: GuestAgent, path: string, max: number): Promise<Buffer> {
  const h = await agent.fileOpen(path, 'r');
  try {
    const parts: Buffer[] = [];
    let size = 0;
    for (;;) {
      const { data, eof } = await agent.fileRead(h, 64 * 1024);
      parts.push(data);
      size += data.length;
      if (eof || data.length === 0 || size >= max) return Buffer.concat(parts);
    }
  } finally {
    await agent.fileClose(h).catch(() => undefined);
  }
}
