/**
 * Client-side names for the wire types. Every one is derived from the TypeBox schemas the daemon validates
 * with (type-only imports: nothing of the server is loaded at run time).
 */
import type { Static } from '@sinclair/typebox';
import type { ClearResult, ConsoleRead, ConsoleSendResult, ExecuteBody, ExecuteResult } from '../api/schemas/console.js';
import type { EventEnvelope } from '../api/schemas/events.js';
import type { CreateJobBody, Job as JobSchema, JobOutput as JobOutputSchema } from '../api/schemas/jobs.js';
import type { Health, HostInfo, Metrics } from '../api/schemas/host.js';
import type { QemuLogChunk } from '../api/schemas/logs.js';
import type {
  CloneVmBody, CreateVmBody, RestartBody, Runtime, StartBody, StartResult, StopAllResult, StopBody, UpdateVmBody, Vm as VmSchema, VmErrors,
} from '../api/schemas/vm.js';

export type Vm = Static<typeof VmSchema>;
export type CreateVm = Static<typeof CreateVmBody>;
export type CloneVm = Static<typeof CloneVmBody>;
export type UpdateVm = Static<typeof UpdateVmBody>;
export type StartOptions = Static<typeof StartBody>;
export type StartOutcome = Omit<Static<typeof StartResult>, 'vm'> & { vm: Vm };
export type StopOptions = Static<typeof StopBody>;
export type RestartOptions = Static<typeof RestartBody>;
export type StopAllOutcome = Static<typeof StopAllResult>;
export type VmRuntime = Static<typeof Runtime>;
export type VmErrorList = Static<typeof VmErrors>;
export type ConsolePage = Static<typeof ConsoleRead>;
export type ConsoleSent = Static<typeof ConsoleSendResult>;
export type ConsoleCleared = Static<typeof ClearResult>;
export type ExecuteRequest = Static<typeof ExecuteBody>;
export type ExecuteOutcome = Static<typeof ExecuteResult>;
export type GroveEvent = Static<typeof EventEnvelope>;
export type HealthInfo = Static<typeof Health>;
export type Host = Static<typeof HostInfo>;
export type HostMetrics = Static<typeof Metrics>;
export type QemuLog = Static<typeof QemuLogChunk>;

import type { RegisterWebhookBody, Webhook as WebhookSchema } from '../api/schemas/webhooks.js';
export type Webhook = Static<typeof WebhookSchema>;
export type RegisterWebhook = Static<typeof RegisterWebhookBody>;

import type { CreateSnapshotBody, RestoreResult, Snapshot as SnapshotSchema } from '../api/schemas/snapshot.js';
import type { ScreenshotJson } from '../api/schemas/machine.js';
import type { SshAccess as SshAccessSchema, SuspendStatus as SuspendStatusSchema } from '../api/schemas/vm.js';
export type Snapshot = Static<typeof SnapshotSchema>;
export type CreateSnapshot = Static<typeof CreateSnapshotBody>;
export type RestoreOutcome = Omit<Static<typeof RestoreResult>, 'vm' | 'snapshot'> & { vm: Vm; snapshot: Snapshot };
export type Screenshot = Static<typeof ScreenshotJson>;
export type SuspendStatus = Static<typeof SuspendStatusSchema>;
export type SshAccess = Static<typeof SshAccessSchema>;

import type { Distro as DistroSchema, Download as DownloadSchema } from '../api/schemas/downloads.js';
export type Distro = Static<typeof DistroSchema>;
export type Download = Static<typeof DownloadSchema>;

import type {
  ExecBody, ExecResult, FileList as FileListSchema, MkdirBody, MkdirResult, OsInfo as OsInfoSchema, UploadResult, VmIp as VmIpSchema,
} from '../api/schemas/agent.js';
import type { AgentStatus as AgentStatusSchema } from '../api/schemas/vm.js';
export type GuestExecRequest = Static<typeof ExecBody>;
export type GuestExecOutcome = Static<typeof ExecResult>;
export type VmIp = Static<typeof VmIpSchema>;
export type GuestOsInfo = Static<typeof OsInfoSchema>;
export type GuestFileList = Static<typeof FileListSchema>;
export type GuestMkdir = Static<typeof MkdirBody>;
export type GuestMkdirOutcome = Static<typeof MkdirResult>;
export type GuestUploadOutcome = Static<typeof UploadResult>;
export type AgentStatus = Static<typeof AgentStatusSchema>;
import type { LaunchBody, LaunchResult as LaunchResultSchema } from '../api/schemas/launch.js';
export type LaunchVm = Static<typeof LaunchBody>;
export type LaunchOutcome = Omit<Static<typeof LaunchResultSchema>, 'vm'> & { vm: Vm };
import type { Delivery as DeliverySchema, WebhookTestResult } from '../api/schemas/webhooks.js';
import type { ExportWritten } from '../api/schemas/bundle.js';
export type WebhookDelivery = Static<typeof DeliverySchema>;
export type WebhookTestOutcome = Static<typeof WebhookTestResult>;
export type ExportWrittenOutcome = Static<typeof ExportWritten>;
export type ImportedVm = Vm;
import type { InputBody, InputResult } from '../api/schemas/screen.js';
export type ScreenInputBody = Static<typeof InputBody>;
export type ScreenInputResult = Static<typeof InputResult>;

// ---- durable jobs ---------------------------------------------------------------------------------
export type JobRequest = Static<typeof CreateJobBody>;
export type Job = Static<typeof JobSchema>;
export type JobOutputPage = Static<typeof JobOutputSchema>;
import type { WaitBody, WaitResult } from '../api/schemas/wait.js';
import type { ForkBody, ForkResult } from '../api/schemas/fork.js';
export type WaitRequest = Static<typeof WaitBody>;
export type WaitOutcome = Static<typeof WaitResult>;
export type WaitConditionInput = WaitRequest['until'][number];
export type ForkRequest = Static<typeof ForkBody>;
export type ForkOutcome = Omit<Static<typeof ForkResult>, 'parent' | 'children'> & {
  parent: Vm; children: (Omit<Static<typeof ForkResult>['children'][number], 'vm'> & { vm: Vm })[];
};
