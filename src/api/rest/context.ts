import type { ConsoleService } from '../../app/console/console-service.js';
import type { HostService } from '../../app/host-service.js';
import type { VmService } from '../../app/vm-service.js';
import type { SnapshotService } from '../../app/snapshot-service.js';
import type { DiskService } from '../../app/disk-service.js';
import type { BundleService } from '../../app/bundle-service.js';
import type { CloneService } from '../../app/clone-service.js';
import type { ScreenshotService } from '../../app/screenshot-service.js';
import type { WebhookService } from '../../app/webhook-service.js';
import type { EventBus } from '../../events/event-bus.js';
import type { CloudInitService } from '../../app/cloud-init-service.js';
import type { DownloadService } from '../../app/downloads/download-service.js';
import type { AgentService } from '../../app/agent/agent-service.js';
import type { ExecService } from '../../app/agent/exec-service.js';
import type { GuestFileService } from '../../app/agent/file-service.js';
import type { LaunchService } from '../../app/launch/launch-service.js';
import type { WaitService } from '../../app/wait/wait-service.js';
import type { ForkService } from '../../app/fork/fork-service.js';

/** What the transports need from the core: services only, never adapters. */
export interface ApiServices {
  vms: VmService;
  console: ConsoleService;
  host: HostService;
  events: EventBus;
  webhooks: WebhookService;
  snapshots: SnapshotService;
  disks: DiskService;
  bundles: BundleService;
  clones: CloneService;
  screenshots: ScreenshotService;
  cloudInit: CloudInitService;
  downloads: DownloadService;
  agents: AgentService;
  exec: ExecService;
  files: GuestFileService;
  launch: LaunchService;
  wait: WaitService;
  forks: ForkService;
  version: string;
  startedAt: number;
}
