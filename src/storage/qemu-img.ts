import { errorMessage } from '../util/errors.js';
import { realpath } from 'node:fs/promises';
import { DomainError } from '../domain/errors.js';
import type { DiskInfo, DiskStore } from '../ports/disk-store.js';
import { run } from '../util/run.js';
import { parseQemuVersion, renderOpts } from '../util/qemu-opts.js';
import { readBackingName, readLayerFacts } from './qcow2-header.js';

const GiB = 1024 ** 3;
const QUICK_MS = 60_000;
const COPY_MS = 60 * 60_000;

export class QemuImg implements DiskStore {
  constructor(private readonly binary: string) {}

  private async exec(args: string[], timeoutMs = QUICK_MS): Promise<string> {
    let r;
    try {
      r = await run(this.binary, args, timeoutMs);
    } catch (e) {
      throw new DomainError('QEMU_FAILED', `cannot run ${this.binary}: ${errorMessage(e)}`);
    }
    if (r.code !== 0) throw new DomainError('QEMU_FAILED', `qemu-img ${args[0]} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  async create(path: string, sizeGB: number): Promise<void> {
    await this.exec(['create', '-q', '-f', 'qcow2', path, String(sizeGB * GiB)]);
  }

  async createFrom(path: string, source: string, sourceFormat: 'qcow2' | 'raw', sizeGB: number): Promise<void> {
    await this.assertStandalone(source, sourceFormat);
    await this.exec(['convert', '-q', '-f', sourceFormat, '-O', 'qcow2', source, path], COPY_MS);
    const info = await this.info(path);
    if (info.virtualSize < sizeGB * GiB) await this.exec(['resize', '-q', '-f', 'qcow2', path, String(sizeGB * GiB)]);
  }

  /**
   * The caller's image must really be of the named format, and self-contained: a qcow2 naming a backing
   * or external data file would make qemu-img read (and copy into the VM) any file on the host.
   */
  async assertStandalone(source: string, format: 'qcow2' | 'raw'): Promise<void> {
    const r = await run(this.binary, ['info', '-U', '--output=json', '-f', format, source], QUICK_MS).catch((e: Error) => {
      throw new DomainError('QEMU_FAILED', `cannot run ${this.binary}: ${e.message}`);
    });
    if (r.code !== 0) {
      throw new DomainError('VALIDATION_FAILED', `image is not a usable ${format} file: ${r.stderr.trim().split('\n').pop() ?? ''}`, { field: 'image' });
    }
    const j = JSON.parse(r.stdout) as { 'backing-filename'?: string; 'format-specific'?: { data?: { 'data-file'?: string } } };
    if (j['backing-filename'] !== undefined || j['format-specific']?.data?.['data-file'] !== undefined) {
      throw new DomainError('VALIDATION_FAILED', 'images with a backing file or an external data file are not accepted; flatten it first (qemu-img convert)', { field: 'image' });
    }
  }

  async info(path: string): Promise<DiskInfo> {
    // -U: the image may be open in a running QEMU; we only read its header.
    const out = await this.exec(['info', '-U', '--output=json', '-f', 'qcow2', await resolved(path)]);
    const j = JSON.parse(out) as { 'virtual-size': number; 'actual-size': number; format: string };
    return { virtualSize: j['virtual-size'], actualSize: j['actual-size'], format: j.format };
  }

  async createOverlay(path: string, backing: string, sizeBytes: number): Promise<void> {
    // -u: qemu-img would otherwise open the backing, which a running QEMU holds locked for writing.
    await this.exec(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, '-u', path, String(sizeBytes)]);
  }

  backingName(path: string): Promise<string | null> {
    return readBackingName(path);
  }

  layerFacts(path: string): Promise<{ virtualSize: number; holdsData: boolean }> {
    return readLayerFacts(path);
  }

  async flatten(path: string, target: string): Promise<void> {
    await this.exec(['convert', '-q', '-f', 'qcow2', '-O', 'qcow2', await resolved(path), target], COPY_MS);
  }

  async resize(path: string, sizeGB: number): Promise<void> {
    await this.exec(['resize', '-q', '-f', 'qcow2', await resolved(path), String(sizeGB * GiB)]);
  }

  async snapshotCreate(path: string, tag: string): Promise<void> {
    await this.exec(['snapshot', '-q', '--image-opts', '-c', tag, qcow2Opts(await resolved(path))]);
  }

  async snapshotApply(path: string, tag: string): Promise<void> {
    await this.exec(['snapshot', '-q', '--image-opts', '-a', tag, qcow2Opts(await resolved(path))]);
  }

  async snapshotDelete(path: string, tag: string): Promise<void> {
    await this.exec(['snapshot', '-q', '--image-opts', '-d', tag, qcow2Opts(await resolved(path))]);
  }

  async snapshotList(path: string): Promise<{ tag: string; vmStateBytes: number }[]> {
    const out = await this.exec(['info', '-U', '--output=json', '-f', 'qcow2', await resolved(path)]);
    const j = JSON.parse(out) as { snapshots?: { name: string; 'vm-state-size': number }[] };
    return (j.snapshots ?? []).map((s) => ({ tag: s.name, vmStateBytes: s['vm-state-size'] }));
  }

  async version(): Promise<string> {
    const out = await this.exec(['--version']);
    return parseQemuVersion(out);
  }
}

/**
 * qemu resolves a relative backing name against the name it was given, not the file's real place: a
 * VM's disk link (vms/<id>/disk.qcow2 → disks/…) must be followed first, or the pool's names miss.
 */
async function resolved(path: string): Promise<string> {
  return realpath(path).catch(() => path);
}

/** `qemu-img snapshot` has no -f: the format is named through --image-opts instead of being probed. */
function qcow2Opts(path: string): string {
  return renderOpts(null, { driver: 'qcow2', 'file.driver': 'file', 'file.filename': path });
}
