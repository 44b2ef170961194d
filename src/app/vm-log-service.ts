import type { LogFiles } from '../ports/log-files.js';
import type { DataLayout } from './layout.js';
import type { VmService } from './vm-service.js';

export interface QemuLogChunk {
  /** The log's size now; pass it as `since` to read what comes next. */
  size: number;
  /** Byte offsets of `text` in the log. */
  from: number;
  to: number;
  /** The bytes as UTF-8 (QEMU writes text; anything else shows as U+FFFD). */
  text: string;
}

export const QEMU_LOG_DEFAULT_BYTES = 64 * 1024;

/**
 * QEMU's own log of a VM's latest start (`-D qemu.log`: its warnings and errors; QEMU starts the file
 * afresh at each start, the previous start's is kept as qemu.log.1), read by byte offset.
 */
export class VmLogService {
  constructor(private readonly d: { vms: VmService; layout: DataLayout; files: LogFiles }) {}

  /** From `since` (default: the last `maxBytes`), at most `maxBytes`. A `since` past the end reads nothing. */
  async qemuLog(ref: string, opts: { since?: number; maxBytes?: number }): Promise<QemuLogChunk> {
    const vm = this.d.vms.get(ref);
    const file = this.d.layout.vmPaths(vm.id).qemuLog;
    const max = opts.maxBytes ?? QEMU_LOG_DEFAULT_BYTES;
    const size = await this.d.files.size(file);
    const from = Math.min(opts.since ?? Math.max(0, size - max), size);
    const data = await this.d.files.read(file, from, Math.min(max, size - from));
    return { size, from, to: from + data.length, text: data.toString('utf8') };
  }
}
