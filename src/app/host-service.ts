import type { Accelerator } from '../domain/vm.js';
import type { HostFacts, HostProbe } from '../ports/host-facts.js';
import type { Hypervisor } from '../ports/hypervisor.js';
import type { DataLayout } from './layout.js';
import type { VmService } from './vm-service.js';

export interface HostInfo extends HostFacts {
  dataDir: string;
  freeDiskBytes: number;
  qemuVersion: string;
  accelerator: Accelerator;
  acceleratorReason: string;
  groveVersion: string;
  daemonUptimeSeconds: number;
}

export interface Metrics {
  host: { cpuPercent: number; memoryBytes: number; freeMemoryBytes: number; freeDiskBytes: number; loadAverage: [number, number, number] };
  vms: { id: string; name: string; state: string; cpuPercent: number | null; rssBytes: number | null; diskBytes: number }[];
}

export class HostService {
  private qemuVersion: string | null = null;
  private readonly startedAt = Date.now();

  constructor(private readonly d: {
    probe: HostProbe; hypervisor: Hypervisor; layout: DataLayout; vms: VmService;
    groveVersion: string; acceleratorReason: string;
  }) {}

  async info(): Promise<HostInfo> {
    const [facts, freeDiskBytes] = await Promise.all([this.d.probe.facts(), this.d.probe.freeDiskBytes(this.d.layout.root)]);
    this.qemuVersion ??= await this.d.hypervisor.version().catch(() => 'unknown');
    return {
      ...facts, dataDir: this.d.layout.root, freeDiskBytes, qemuVersion: this.qemuVersion,
      accelerator: this.d.hypervisor.accelerator, acceleratorReason: this.d.acceleratorReason,
      groveVersion: this.d.groveVersion, daemonUptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  async metrics(): Promise<Metrics> {
    const [facts, freeDiskBytes, cpuPercent] = await Promise.all([
      this.d.probe.facts(), this.d.probe.freeDiskBytes(this.d.layout.root), this.d.probe.cpuPercent(),
    ]);
    const vms = await Promise.all(this.d.vms.list().map(async (vm) => {
      const rt = await this.d.vms.runtime(vm.id).catch(() => null);
      const diskBytes = await this.d.probe.fileBytes(this.d.layout.vmPaths(vm.id).disk);
      return { id: vm.id, name: vm.name, state: vm.state, cpuPercent: rt?.cpuPercent ?? null, rssBytes: rt?.rssBytes ?? null, diskBytes };
    }));
    return {
      host: { cpuPercent, memoryBytes: facts.memoryBytes, freeMemoryBytes: facts.freeMemoryBytes, freeDiskBytes, loadAverage: facts.loadAverage },
      vms,
    };
  }
}
