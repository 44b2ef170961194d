import type { ConsoleService } from '../../app/console/console-service.js';
import type { HostService } from '../../app/host-service.js';
import type { VmService } from '../../app/vm-service.js';
import type { EventBus } from '../../events/event-bus.js';

/** What the transports need from the core: services only, never adapters. */
export interface ApiServices {
  vms: VmService;
  console: ConsoleService;
  host: HostService;
  events: EventBus;
  version: string;
  startedAt: number;
}
