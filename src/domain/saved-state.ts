import { DomainError } from './errors.js';
import { isDottedIPv4 } from './vm.js';

/**
 * The meta file of a suspended VM (`state.json` beside the RAM image `state.bin`). Versioned like Incus's
 * stateful snapshots: a Grove that finds a newer format than it writes refuses to resume it instead of
 * feeding QEMU a state it may misread. Files from before the field existed are version 1 (same shape).
 */
export const SAVED_STATE_VERSION = 1;

export type RunState = 'running' | 'paused';

/** What Grove writes. */
export interface SavedStateMeta {
  version: number;
  /** What the guest was doing: start resumes into it. */
  runState: RunState;
  savedAt: string;
  /**
   * Where the VM's host port forwards were aimed when it was saved, when not at QEMU's default (a fork
   * child's guest leased another address under its new MAC): the saved network state keeps that lease,
   * the next QEMU aims them at the default again, so the resume re-aims them. Absent in files from before.
   */
  forwardsTo?: string;
}

/**
 * A suspended VM's saved state as found on disk. Of a newer format only the version is trusted (it may
 * have changed the other fields), so runState and savedAt are null then.
 */
export interface SavedState {
  version: number;
  runState: RunState | null;
  savedAt: string | null;
  forwardsTo?: string;
  bytes: number;
}

/** The meta file's content, checked; null when it is not a meta file any Grove wrote. */
export function parseSavedStateMeta(raw: unknown): Omit<SavedState, 'bytes'> | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  const version = m['version'] ?? 1;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) return null;
  if (version > SAVED_STATE_VERSION) return { version, runState: null, savedAt: null };
  if ((m['runState'] !== 'running' && m['runState'] !== 'paused') || typeof m['savedAt'] !== 'string') return null;
  const forwardsTo = m['forwardsTo'];
  if (forwardsTo !== undefined && !(typeof forwardsTo === 'string' && isDottedIPv4(forwardsTo))) return null;
  return { version, runState: m['runState'], savedAt: m['savedAt'], ...(forwardsTo !== undefined ? { forwardsTo } : {}) };
}

/** The saved state if this Grove can resume it; a CONFLICT naming both versions when it is newer. */
export function resumable(saved: SavedState, vmName: string): SavedStateMeta & { bytes: number } {
  if (saved.version > SAVED_STATE_VERSION || saved.runState === null || saved.savedAt === null) {
    throw new DomainError('CONFLICT',
      `VM '${vmName}' was suspended by a newer Grove (saved-state format ${saved.version}; this Grove reads up to ${SAVED_STATE_VERSION}): `
      + 'resume it with that version, or force-stop it to discard the saved state',
      { savedStateVersion: saved.version, supportedVersion: SAVED_STATE_VERSION });
  }
  return { version: saved.version, runState: saved.runState, savedAt: saved.savedAt, bytes: saved.bytes, ...(saved.forwardsTo !== undefined ? { forwardsTo: saved.forwardsTo } : {}) };
}
