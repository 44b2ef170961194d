import { invalid } from './errors.js';
import { isValidTypePattern } from './events.js';
import { VM_STATES, type VmState } from './vm.js';

/**
 * One thing a caller can wait for on a VM. Exactly one key names the kind; `since` (console only) is the
 * log offset to match from (default: output from now on).
 */
export type WaitCondition =
  | { console: string; since?: number }
  | { agent: true }
  | { ip: true }
  | { port: number }
  | { file: string }
  | { command: string }
  | { state: VmState }
  | { event: string };

export const WAIT_KINDS = ['console', 'agent', 'ip', 'port', 'file', 'command', 'state', 'event'] as const;
export type WaitKind = (typeof WAIT_KINDS)[number];
export type WaitMode = 'any' | 'all';

export const WAIT_LIMITS = { maxConditions: 16, defaultTimeoutSeconds: 60, maxTimeoutSeconds: 3600 } as const;

export function kindOf(c: WaitCondition): WaitKind {
  const k = WAIT_KINDS.find((kind) => kind in c);
  if (!k) throw invalid('a wait condition needs one of: console, agent, ip, port, file, command, state, event', { field: 'until' });
  return k;
}

/** What the schema cannot say: one kind per condition, known event types and states. */
export function checkConditions(until: WaitCondition[]): void {
  if (until.length === 0) throw invalid('until needs at least one condition', { field: 'until' });
  if (until.length > WAIT_LIMITS.maxConditions) throw invalid(`until takes at most ${WAIT_LIMITS.maxConditions} conditions`, { field: 'until' });
  until.forEach((c, i) => {
    const kinds = WAIT_KINDS.filter((k) => k in c);
    if (kinds.length !== 1) throw invalid(`until[${i}] must name exactly one condition kind (got ${kinds.join(', ') || 'none'})`, { field: `until[${i}]` });
    if ('since' in c && kinds[0] !== 'console') throw invalid(`until[${i}]: since applies to console conditions only`, { field: `until[${i}].since` });
    if ('event' in c && (!isValidTypePattern(c.event) || c.event === '*')) throw invalid(`until[${i}]: unknown event type '${c.event}'`, { field: `until[${i}].event` });
    if ('state' in c && !(VM_STATES as readonly string[]).includes(c.state)) throw invalid(`until[${i}]: unknown state '${c.state}'`, { field: `until[${i}].state` });
  });
}

/** A condition as a short phrase for messages: `port 22`, `console /login:/`. */
export function describeCondition(c: WaitCondition): string {
  const k = kindOf(c);
  if (k === 'agent' || k === 'ip') return k;
  return `${k} ${String((c as Record<string, unknown>)[k])}`;
}
