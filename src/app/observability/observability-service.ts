import type { VmState } from '../../domain/vm.js';
import type { EventBus } from '../../events/event-bus.js';
import type { DeliveryOutcomes } from '../../ports/webhooks.js';
import type { ResourceUsage } from '../../ports/hypervisor.js';
import type { VmService } from '../vm-service.js';
import type { WebhookService } from '../webhook-service.js';

export interface VmSample {
  id: string;
  name: string;
  state: VmState;
  /** Null when no QEMU runs for it. */
  uptimeSeconds: number | null;
  usage: ResourceUsage | null;
}

export interface ObservabilitySample {
  vms: VmSample[];
  events: { retained: number; latestId: number };
  webhooks: { outcomes: DeliveryOutcomes; pending: number; oldestPendingAgeSeconds: number | null };
}

/**
 * What a metrics scrape reads: counters as they are (QEMU's own, /proc's), never averaged or sampled
 * over a pause, so a scrape costs one QMP round trip per running VM and returns at once.
 */
export class ObservabilityService {
  constructor(private readonly d: { vms: VmService; events: EventBus; webhooks: WebhookService }) {}

  async sample(): Promise<ObservabilitySample> {
    const vms = await Promise.all(this.d.vms.list().map(async (vm): Promise<VmSample> => {
      // A VM stopping meanwhile is not an error for a scrape: it is reported without a process.
      const live = await this.d.vms.usage(vm.id).catch(() => null);
      return { id: vm.id, name: vm.name, state: vm.state, uptimeSeconds: live?.uptimeSeconds ?? null, usage: live?.usage ?? null };
    }));
    return {
      vms,
      events: { retained: this.d.events.retained(), latestId: this.d.events.latestId() },
      webhooks: this.d.webhooks.deliveryStats(),
    };
  }
}
