import { Type, type Static, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { invalid } from '../../domain/errors.js';
import { ArgvString, Empty, VmRefParams } from '../schemas/common.js';
import {
  ClearResult, ConsoleRead, ConsoleReadQuery, ConsoleSendBody, ConsoleSendResult, ConsoleWaitResult, ExecuteBody, ExecuteResult,
} from '../schemas/console.js';
import { HostInfo, Metrics } from '../schemas/host.js';
import { ResizeDiskBody, ScreenshotJson, ScreenshotQuery } from '../schemas/machine.js';
import { ExportBody, ExportWritten, ImportJsonBody } from '../schemas/bundle.js';
import { CreateSnapshotBody, RestoreResult, RestoreSnapshotBody, Snapshot, SnapshotList, SnapshotParams } from '../schemas/snapshot.js';
import {
  CloneVmBody, CreateVmBody, DeleteQuery, ErrorsQuery, ReorderBody, RestartBody, Runtime, StartBody, StartResult, StopAllResult, StopBody,
  SuspendStatus, UpdateVmBody, Vm, VmErrors, VmList, WaitFor,
} from '../schemas/vm.js';
import { RegisterWebhookBody, Webhook, WebhookList, WebhookParams } from '../schemas/webhooks.js';
import { DistroList, Download, DownloadList, StartDownloadBody } from '../schemas/downloads.js';
import { ExecBody, ExecResult, FileList, UploadQuery, UploadResult, VmIp } from '../schemas/agent.js';
import { ExecDetachedResult, Job, JobKillBody, JobOutput, JobOutputQuery, JobParams } from '../schemas/jobs.js';
import { asText } from '../../app/jobs/output-text.js';
import { LaunchBody, LaunchResult } from '../schemas/launch.js';
import type { ApiServices } from '../rest/context.js';
import { keptJson, withKnownJson } from '../known-json.js';
import { InputResult, KeysInput, MouseInput, TextInput } from '../schemas/screen.js';
import { waitForkTools } from './wait-fork-tools.js';

/**
 * One MCP tool: a thin face over one service call. Its input and output are the REST schemas (a tool's
 * `vm` argument is the REST path's `:id`), so validation, documentation and results cannot drift apart.
 */
export interface ToolDef {
  name: string;
  description: string;
  input: TObject;
  output: TSchema;
  /** Called with arguments already validated against `input`. */
  run(args: unknown, ctx: ToolContext): Promise<object> | object;
}

/** What a call carries besides its arguments. */
export interface ToolContext {
  /** Set when the client asked for progress (a progressToken) and the transport can carry notifications. */
  progress?: (progress: number, message: string) => void;
}

/** A result with content of its own (an image) besides the structured output and its JSON text. */
export class ToolOutput {
  constructor(readonly structured: object, readonly content: CallToolResult['content']) {}
}

function tool<I extends TObject>(def: { name: string; description: string; input: I; output: TSchema; run: (args: Static<I>, ctx: ToolContext) => Promise<object> | object }): ToolDef {
  return { ...def, run: (args, ctx) => def.run(args as Static<I>, ctx) };
}

/** `vm` (the VM's name or id, as the reference tool list calls it) plus the given REST body/query fields. */
function withVm<P extends TProperties>(props: P) {
  return Type.Object({ vm: VmRefParams.properties.id, ...props }, { additionalProperties: false });
}

const [SendText, SendKeys] = ConsoleSendBody.anyOf;
const VmListResult = Type.Object({ vms: VmList });
const Deleted = Type.Object({ id: Type.String(), name: Type.String(), deleted: Type.Literal(true) });
const SnapshotArg = { snapshot: SnapshotParams.properties.sid };
const SnapshotListResult = Type.Object({ snapshots: SnapshotList });
const ScreenshotInfo = Type.Omit(ScreenshotJson, ['data']);
const WebhookListResult = Type.Object({ webhooks: WebhookList });
const WebhookDeleted = Type.Object({ id: Type.String(), deleted: Type.Literal(true) });
const WaitForConsoleInput = withVm({
  pattern: WaitFor.properties.console,
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Console offset to search from (e.g. a nextOffset from read_console); omitted: only output that appears after this call' })),
  timeoutSeconds: WaitFor.properties.timeoutSeconds,
});

const DistroListResult = Type.Object({ distros: DistroList });
const DownloadListResult = Type.Object({ downloads: DownloadList });
const DownloadDistroInput = Type.Object({
  distro: StartDownloadBody.properties.distro,
  wait: Type.Optional(Type.Boolean({ description: 'Return only when the download has ended (completed, failed or cancelled), or after timeoutSeconds' })),
  timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'With wait: how long to wait at most (default 300); the download goes on after it' })),
}, { additionalProperties: false });

const STATE_NOTE = 'Fails with INVALID_STATE (naming the current state) when the VM is not in a state that allows it.';
const AGENT_NOTE = 'Goes through the QEMU guest agent in the VM: the VM must be running (INVALID_STATE otherwise) and run qemu-guest-agent (GUEST_AGENT_UNAVAILABLE within a few seconds otherwise).';
const GuestPathArg = (description: string) => Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description });
const HostPathArg = (description: string) => ArgvString({ minLength: 1, maxLength: 4096, description: `${description}: a path inside the daemon's transfer folder (relative paths are taken from it)` });
const FileUploadInput = withVm({
  localPath: Type.Optional(HostPathArg('File on the host to upload')),
  content: Type.Optional(Type.String({ maxLength: 12_000_000, description: 'The file\'s bytes inline, base64 (instead of localPath)' })),
  remotePath: GuestPathArg('Destination file in the guest (absolute)'),
  mode: UploadQuery.properties.mode,
  overwrite: UploadQuery.properties.overwrite,
});
const FileDownloadInput = withVm({
  remotePath: GuestPathArg('File in the guest (absolute)'),
  localPath: Type.Optional(HostPathArg('New host file to write (an existing one is not replaced); without it the bytes come back inline as base64, up to 8 MiB')),
});
const FileDownloadResult = Type.Object({
  path: Type.String(), bytes: Type.Integer(),
  localPath: Type.Optional(Type.String({ description: 'Where the file was written on the host' })),
  content: Type.Optional(Type.String({ description: 'The file\'s bytes, base64 (when no localPath was given)' })),
});

export function mcpTools(s: ApiServices): ToolDef[] {
  // The service hands out the same list object until a VM changes; the result is built once per change.
  let listed: { list: readonly unknown[]; result: object } | null = null;
  const vmList = (): object => {
    const list = s.agents.list();
    if (listed?.list !== list) {
      listed = { list, result: withKnownJson({ vms: list }, `{"vms":${keptJson(list)}}`) };
    }
    return listed.result;
  };

  return [
    // ---- VMs ------------------------------------------------------------------------------------
    tool({
      name: 'list_vms',
      description: 'List every VM with its configuration and current state (stopped, starting, running, paused, stopping, suspended, error), in the user\'s order. Returns { vms: [...] }. Use a VM\'s name or id as `vm` in the other tools.',
      input: Empty, output: VmListResult,
      run: () => vmList(),
    }),
    tool({
      name: 'get_vm',
      description: 'Get one VM: configuration (cpu, memoryMB, diskGB, boot, network), state, startedAt, accelerator, lastError, and `agent` ({ connected, version, os } of its QEMU guest agent; null unless running or paused). Fails with VM_NOT_FOUND when no VM has that name or id.',
      input: withVm({}), output: Vm,
      run: (a) => {
        const vm = s.agents.details(a.vm);
        // Its JSON recorded, so the whole answer is kept per state as list_vms's is (server.ts keeps an
        // output whose JSON is known); GET /vms/:id answers from the same record.
        keptJson(vm);
        return vm;
      },
    }),
    tool({
      name: 'create_vm',
      description: 'Define a new VM (it is created stopped; call start_vm next). Give one thing to boot: a `distro` id from list_distros (a cloud image: the VM gets cloud-init with Grove\'s SSH key and a forward to its port 22; when the image is not downloaded yet the VM is `provisioning` until the download completes, then `stopped`, or `error` with the download\'s reason — follow it with get_vm), `kernel` (+ `initrd`, `cmdline`) for direct Linux boot, a disk `image` copied as its disk, or a blank disk plus an `iso`. Host paths must lie inside the daemon\'s images/ or transfer/ folder (relative paths are taken from images/). To create, start and wait for a distro VM in one call use launch_vm. `cloudInit` ({ user, password, sshAuthorizedKeys, hostname, packages, timezone, userData }) attaches a NoCloud seed for cloud images: a user with passwordless sudo and Grove\'s SSH key, and a free host port forwarded to guest port 22 (see the VM\'s network.portForwards). Returns the new VM.',
      input: CreateVmBody, output: Vm,
      run: (a) => s.vms.create(a),
    }),
    tool({
      name: 'update_vm',
      description: 'Change a VM: `name` and `autostart` (start it whenever the daemon starts and it is not up) at any time; `cpu`, `memoryMB` and `network` only while it is stopped. Returns the updated VM. ' + STATE_NOTE,
      input: withVm(UpdateVmBody.properties), output: Vm,
      run: ({ vm, ...patch }) => s.vms.update(vm, patch),
    }),
    tool({
      name: 'clone_vm',
      description: 'Clone a VM (running or not) as a new stopped VM, optionally under `name` (default `<vm>-clone`). Copy-on-write: independent of the disk size, unless the source has snapshots on a filesystem without reflink (then its top disk layer is copied, the guest paused meanwhile, and the clone gets the same snapshots). Neither VM depends on the other afterwards. A running source is cloned crash-consistently (what a power cut would leave). Host port forwards are not copied unless `network` is given. Returns the new VM; start it with start_vm.',
      input: withVm(CloneVmBody.properties), output: Vm,
      run: async ({ vm, ...opts }) => (await s.clones.clone(vm, opts)).vm,
    }),
    tool({
      name: 'delete_vm',
      description: 'Delete a VM and all its files (disk, console log). The VM must be stopped unless `force` is true, which cuts its power first. This cannot be undone. Returns { id, name, deleted: true }.',
      input: withVm(DeleteQuery.properties), output: Deleted,
      run: async (a) => {
        const vm = s.vms.get(a.vm);
        await s.vms.delete(vm.id, a.force ?? false);
        return { id: vm.id, name: vm.name, deleted: true };
      },
    }),
    tool({
      name: 'reorder_vms',
      description: 'Set the order VMs are listed in: the VMs named in `order` (ids or names) come first, in that order; the others follow. Returns { vms: [...] } in the new order.',
      input: ReorderBody, output: VmListResult,
      run: (a) => ({ vms: s.vms.reorder(a.order) }),
    }),

    tool({
      name: 'launch_vm',
      description: 'Create a VM from a catalog `distro` (an id from list_distros), download its image first if it is not local, start it and wait until the guest is ready, in one call. `waitFor: "ssh"` (default) returns once the guest\'s SSH server answers through its forwarded port (then `grove ssh <name>` logs in on the daemon\'s host); `"none"` returns once QEMU runs. `name` defaults to `<distro>-<4 hex digits>`; `cloudInit` as in create_vm (default: user grove with Grove\'s key). `timeoutSeconds` (default 300) bounds the wait after the start; a first boot takes seconds with KVM and a minute or two without, and a download adds its own time: keep your MCP client\'s request timeout in mind, or use `waitFor: "none"` and poll get_vm. Returns { vm, image (local or downloaded), ready: { check, elapsedMs, detail } or null, durations }. A failed download fails with its code (DOWNLOAD_FAILED, CHECKSUM_MISMATCH, …) and leaves the VM in error; a readiness timeout fails with TIMEOUT and the VM keeps running.',
      input: LaunchBody, output: LaunchResult,
      run: (a) => s.launch.launch(a),
    }),

    // ---- lifecycle ------------------------------------------------------------------------------
    tool({
      name: 'start_vm',
      description: 'Start a stopped VM (or one in error). With `waitFor: { console, timeoutSeconds }` the call returns only once that text, or /regex/flags, appears on the serial console (e.g. a login prompt or a ready line); TIMEOUT if it does not (the VM keeps running). Keep timeoutSeconds below your MCP client\'s request timeout. Returns { vm, waitFor? } with the match and its console offset. ' + STATE_NOTE,
      input: withVm(StartBody.properties), output: StartResult,
      run: (a) => {
        const w = a.waitFor;
        if (w && 'until' in w) return s.wait.start(a.vm, w);
        return s.vms.start(a.vm, w ? { console: w.console, timeoutSeconds: w.timeoutSeconds ?? 60 } : undefined);
      },
    }),
    tool({
      name: 'stop_vm',
      description: 'Gracefully shut down a running or paused VM: presses the ACPI power button and waits up to `timeoutSeconds` (default 60) for the guest to power off. If it does not: TIMEOUT and the VM keeps running, or with `force: true` the power is cut. Returns the VM (state stopped). ' + STATE_NOTE,
      input: withVm(StopBody.properties), output: Vm,
      run: ({ vm, ...opts }) => s.vms.stop(vm, opts),
    }),
    tool({
      name: 'force_stop_vm',
      description: 'Cut a VM\'s power at once (like pulling the plug; unsaved guest data is lost). Works while running, paused, starting, stopping or in error. Returns the VM (state stopped).',
      input: withVm({}), output: Vm,
      run: (a) => s.vms.forceStop(a.vm),
    }),
    tool({
      name: 'restart_vm',
      description: 'Restart a running or paused VM. Default: ACPI power-off (forced after `timeoutSeconds`, default 60) then start again. `hard: true`: immediate hardware reset. Returns the VM (state running). ' + STATE_NOTE,
      input: withVm(RestartBody.properties), output: Vm,
      run: ({ vm, ...opts }) => s.vms.restart(vm, opts),
    }),
    tool({
      name: 'pause_vm',
      description: 'Freeze a running VM\'s vCPUs (running → paused); memory stays as it is. Returns the VM. ' + STATE_NOTE,
      input: withVm({}), output: Vm,
      run: (a) => s.vms.pause(a.vm),
    }),
    tool({
      name: 'resume_vm',
      description: 'Thaw a paused VM (paused → running). Returns the VM. ' + STATE_NOTE,
      input: withVm({}), output: Vm,
      run: (a) => s.vms.resume(a.vm),
    }),
    tool({
      name: 'stop_all',
      description: 'Gracefully shut down every running or paused VM in parallel (ACPI power button), waiting up to `timeoutSeconds` each; `force: true` cuts the power of those that do not stop in time. Returns one result per VM: { id, name, ok, state, error? }.',
      input: StopBody, output: StopAllResult,
      run: (a) => s.vms.stopAll(a),
    }),

    tool({
      name: 'suspend_vm',
      description: 'Suspend a running or paused VM to disk: RAM and device state are saved and QEMU exits (state suspended, no CPU or RAM used). start_vm later resumes it exactly where it was, in the run state it had. force_stop_vm discards the saved state. Returns the VM. ' + STATE_NOTE,
      input: withVm({}), output: Vm,
      run: (a) => s.vms.suspend(a.vm),
    }),
    tool({
      name: 'get_suspend_status',
      description: 'Whether a VM is suspended to disk, and if so when (savedAt), how large its saved state is (stateBytes) and the run state it will resume in.',
      input: withVm({}), output: SuspendStatus,
      run: (a) => s.vms.suspendStatus(a.vm),
    }),

    // ---- snapshots and disk ---------------------------------------------------------------------
    tool({
      name: 'list_snapshots',
      description: 'List a VM\'s snapshots: { snapshots: [{ id, name, description, kind (live: RAM + disk, disk: disk only), vmState (what a restore returns to), createdAt }] }.',
      input: withVm({}), output: SnapshotListResult,
      run: (a) => ({ snapshots: s.snapshots.list(a.vm) }),
    }),
    tool({
      name: 'create_snapshot',
      description: 'Snapshot a VM. Running or paused: a live snapshot with RAM and device state (the guest pauses while it is written) unless `memory: false`; stopped: the disk alone. `name` is optional (default snap-<timestamp>) and unique per VM. Returns the snapshot.',
      input: withVm(CreateSnapshotBody.properties), output: Snapshot,
      run: ({ vm, ...input }) => s.snapshots.create(vm, input),
    }),
    tool({
      name: 'restore_snapshot',
      description: 'Return a VM to a snapshot. A live snapshot puts RAM, devices and disk back and leaves the VM in the run state it had then (a stopped VM is started). A disk-only snapshot needs the VM stopped (INVALID_STATE otherwise), or `force: true` powers it off first. Returns { vm, snapshot }.',
      input: withVm({ ...SnapshotArg, ...RestoreSnapshotBody.properties }), output: RestoreResult,
      run: (a) => s.snapshots.restore(a.vm, a.snapshot, a.force !== undefined ? { force: a.force } : {}),
    }),
    tool({
      name: 'delete_snapshot',
      description: 'Delete one snapshot of a VM (the VM itself is untouched). Returns { id, name, deleted: true }.',
      input: withVm(SnapshotArg), output: Deleted,
      run: async (a) => {
        const snap = s.snapshots.get(a.vm, a.snapshot);
        await s.snapshots.delete(a.vm, snap.id);
        return { id: snap.id, name: snap.name, deleted: true };
      },
    }),
    tool({
      name: 'resize_disk',
      description: 'Grow a VM\'s disk to `sizeGB` (online while it runs, offline when stopped). Shrinking is refused. A disk with snapshots grows too; restoring a snapshot brings back the size it was taken at. The guest must grow its own partitions and filesystems. Returns the VM.',
      input: withVm(ResizeDiskBody.properties), output: Vm,
      run: (a) => s.disks.resize(a.vm, a.sizeGB),
    }),
    tool({
      name: 'export_vm',
      description: 'Write a stopped VM as a portable bundle (tar: versioned manifest with checksums, the qcow2 disk with its snapshots, kernel/initrd) into Grove\'s transfer folder. `path` is a file name inside that folder (default <vm>.grove.tar; `.gz` compresses). Returns where it was written and its size.',
      input: withVm({ path: ExportBody.properties.path }), output: ExportWritten,
      run: (a) => s.bundles.exportToTransfer(a.vm, a.path !== undefined ? { path: a.path } : {}),
    }),
    tool({
      name: 'import_vm',
      description: 'Create a VM from a bundle file in Grove\'s transfer folder (as written by export_vm). Every entry is verified against the manifest; hostile or damaged bundles are refused and leave nothing behind. `name` renames the new VM (needed when the original name is taken). Returns the new VM (stopped).',
      input: ImportJsonBody,
      output: Vm,
      run: (a) => s.bundles.importFromTransfer(a.path, a.name),
    }),
    tool({
      name: 'take_screenshot',
      description: 'Capture a running or paused VM\'s display (the emulated VGA screen; useful before a console is up or for graphical guests). Returns the image (JPEG by default, `format: "png"` for PNG) as MCP image content, plus { format, width, height }. `scale` (e.g. 0.5) or `maxWidth` shrink it; mouse_click and mouse_move take full-size screen pixels, so multiply back by the factor.',
      input: withVm(ScreenshotQuery.properties), output: ScreenshotInfo,
      run: async (a) => {
        const shot = await s.screenshots.take(a.vm, {
          format: a.format ?? 'jpeg', quality: a.quality ?? 80,
          ...(a.scale !== undefined ? { scale: a.scale } : {}), ...(a.maxWidth !== undefined ? { maxWidth: a.maxWidth } : {}),
        });
        return new ToolOutput({ format: shot.format, width: shot.width, height: shot.height }, [
          { type: 'image', data: shot.data.toString('base64'), mimeType: shot.format === 'png' ? 'image/png' : 'image/jpeg' },
        ]);
      },
    }),

    // ---- serial console -------------------------------------------------------------------------
    tool({
      name: 'send_console',
      description: 'Type into a running or paused VM\'s serial console. Give `text` (sent as-is; end it with "\\n" to press enter) or `keys` (names such as enter, tab, up, ctrl-c). Nothing is returned but the byte count; use read_console or wait_for_console to see the effect. ' + STATE_NOTE,
      input: withVm({ text: Type.Optional(SendText.properties.text), keys: Type.Optional(SendKeys.properties.keys) }), output: ConsoleSendResult,
      run: async (a) => {
        if ((a.text === undefined) === (a.keys === undefined)) throw invalid('give either `text` or `keys`', { field: a.text === undefined ? 'text' : 'keys' });
        return s.console.sendInput(s.vms.get(a.vm), a.text !== undefined ? { text: a.text } : { keys: a.keys! });
      },
    }),
    tool({
      name: 'read_console',
      description: 'Read serial console output (works in any state; history survives restarts). Without `since`: the latest `limit` bytes (default 65536) since the last clear_console. With `since`: output from that byte offset on. Returns { data, offset, nextOffset, truncated }; pass nextOffset as `since` next time to get only new output. `strip: "ansi"` removes terminal escape codes.',
      input: withVm(ConsoleReadQuery.properties), output: ConsoleRead,
      run: (a) => s.console.read(s.vms.get(a.vm), { ...(a.since !== undefined ? { since: a.since } : {}), limit: a.limit ?? 65536, stripAnsi: a.strip === 'ansi' }),
    }),
    tool({
      name: 'console_execute',
      description: 'Run a shell command on a running VM through its serial console and return { output, exitCode, timedOut, durationMs }. Needs a shell prompt on the console (wait for the guest to boot first, e.g. with wait_for_console). On timeout (`timeoutSeconds`, default 30) the command is interrupted with Ctrl-C and exitCode is null. Commands run one at a time in the same shell session (a cd persists). ' + STATE_NOTE,
      input: withVm(ExecuteBody.properties), output: ExecuteResult,
      run: (a) => s.console.execute(s.vms.get(a.vm), a.command, (a.timeoutSeconds ?? 30) * 1000),
    }),
    tool({
      name: 'wait_for_console',
      description: 'Wait until text, or /regex/flags, appears on a VM\'s serial console: in output after `since` (a console offset), or without it only in output that appears after this call. Returns { matched, offset, elapsedMs }; TIMEOUT after `timeoutSeconds` (default 60; keep it below your MCP client\'s request timeout); INVALID_STATE if the VM is not running or stops while waiting.',
      input: WaitForConsoleInput, output: ConsoleWaitResult,
      run: (a) => s.console.waitForOutput(s.vms.get(a.vm), a.pattern, { ...(a.since !== undefined ? { since: a.since } : {}), timeoutMs: (a.timeoutSeconds ?? 60) * 1000 }),
    }),
    tool({
      name: 'clear_console',
      description: 'Clear a VM\'s console buffer: read_console without `since` starts after this point from now on (the history itself is kept). Returns { offset }.',
      input: withVm({}), output: ClearResult,
      run: (a) => s.console.clear(s.vms.get(a.vm)),
    }),

    // ---- guest agent ----------------------------------------------------------------------------
    tool({
      name: 'exec',
      description: 'Run a program in a running VM through its guest agent, as a durable job: `argv` (run as given, no shell) or `command` (a shell line, run by /bin/sh -c), with optional `stdin`, `env`, `cwd`. Waits at most `timeoutSeconds` (your budget, default 50: keep it below your MCP client\'s request timeout) and returns { exitCode, signal, stdout, stderr, ..., jobId, running }. When the command is still running then, it is NOT killed: `running` is true and you continue with job_wait / job_output (from `stdoutNext`) / job_kill on `jobId`. Output is text (utf8) unless not valid UTF-8 (then base64), at most `maxOutputBytes` per stream here (default 1 MiB; all of it stays readable with job_output). With a progressToken, notifications/progress carry the output as it arrives. ' + AGENT_NOTE,
      input: McpExecInput, output: McpExecResult,
      run: async ({ vm, timeoutSeconds, maxOutputBytes, ...req }, ctx) => {
        let seen = 0;
        const r = await s.jobs.runFor(vm, req, (timeoutSeconds ?? 50) * 1000, maxOutputBytes ?? 1024 * 1024, ctx.progress ? {
          onOutput: (c) => { seen += c.data.length; ctx.progress!(seen, c.data.toString('utf8')); },
        } : {});
        return { ...r, running: r.detached === true, stdoutNext: Buffer.byteLength(r.stdout, r.stdoutEncoding === 'base64' ? 'base64' : 'utf8'), stderrNext: Buffer.byteLength(r.stderr, r.stderrEncoding === 'base64' ? 'base64' : 'utf8') };
      },
    }),
    tool({
      name: 'ssh_execute',
      description: 'Run a shell command line in a running VM and return its exit code and output ({ exitCode, stdout, stderr, ... } as `exec` returns). Despite the name (kept for bridges written for it) this needs no SSH: the command runs through the QEMU guest agent, by /bin/sh -c. ' + AGENT_NOTE,
      input: withVm({ command: Type.String({ minLength: 1, maxLength: 131072, description: 'A shell command line' }), timeoutSeconds: ExecBody.properties.timeoutSeconds }), output: ExecResult,
      run: ({ vm, command, timeoutSeconds }) => s.exec.exec(vm, { command, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) }),
    }),
    tool({
      name: 'vm_ip',
      description: 'The IP addresses of a running VM, from its guest agent: { ip (the first global IPv4, else IPv6), interfaces: [{ name, mac, addresses }], portForwards }. With user-mode NAT the guest address is not reachable from the host; use the host ports in portForwards (on 127.0.0.1). ' + AGENT_NOTE,
      input: withVm({}), output: VmIp,
      run: (a) => s.agents.ip(a.vm),
    }),
    tool({
      name: 'file_upload',
      description: 'Write a file into a running VM: from a host file (`localPath`, inside the daemon\'s transfer folder) or from `content` (base64). Give exactly one of them. The file replaces `remotePath` atomically (`overwrite: false` fails with CONFLICT when something is there); `mode` (octal, e.g. "0755") sets its permissions. Returns { path, bytes }. ' + AGENT_NOTE,
      input: FileUploadInput, output: UploadResult,
      run: async ({ vm, localPath, content, remotePath, mode, overwrite }) => {
        if ((localPath === undefined) === (content === undefined)) throw invalid('give either `localPath` or `content`', { field: localPath === undefined ? 'localPath' : 'content' });
        const opts = { overwrite: overwrite ?? true, ...(mode !== undefined ? { mode } : {}) };
        const r = localPath !== undefined ? await s.files.uploadFromHost(vm, remotePath, localPath, opts) : await s.files.uploadInline(vm, remotePath, content!, opts);
        return { path: r.path, bytes: r.bytes };
      },
    }),
    tool({
      name: 'file_download',
      description: 'Read a file from a running VM: into a new host file (`localPath`, inside the daemon\'s transfer folder; an existing file is not replaced), or without localPath inline as base64 `content` (files up to 8 MiB). Returns { path, bytes, localPath? , content? }. ' + AGENT_NOTE,
      input: FileDownloadInput, output: FileDownloadResult,
      run: async ({ vm, remotePath, localPath }) => {
        if (localPath !== undefined) return s.files.downloadToHost(vm, remotePath, localPath);
        const r = await s.files.downloadInline(vm, remotePath);
        return { path: r.path, bytes: r.bytes, content: r.content.toString('base64') };
      },
    }),
    tool({
      name: 'file_list',
      description: 'List a directory in a running VM: { path, entries: [{ name, type (file, directory, symlink, ...), size, mode, modifiedAt, uid, gid }] } sorted by name. ' + AGENT_NOTE,
      input: withVm({ path: GuestPathArg('Directory in the guest (absolute)') }), output: FileList,
      run: (a) => s.files.list(a.vm, a.path),
    }),

    // ---- host and diagnostics -------------------------------------------------------------------
    tool({
      name: 'get_host_info',
      description: 'Facts about the host running the VMs: hostname, OS, kernel, CPU count and model, memory, free disk of the data directory, QEMU version, accelerator (kvm or tcg, and why), Grove version and uptime.',
      input: Empty, output: HostInfo,
      run: () => s.host.info(),
    }),
    tool({
      name: 'get_metrics',
      description: 'Current usage: host CPU %, memory, free disk and load average, plus per VM its state, CPU %, resident memory (rssBytes) and disk bytes. Takes about a quarter second when VMs run (CPU is sampled).',
      input: Empty, output: Metrics,
      run: () => s.host.metrics(),
    }),
    tool({
      name: 'vm_runtime',
      description: 'Runtime figures of one VM: state, QEMU pid, uptime, CPU %, resident memory, disk I/O counters and accelerator. All figures are null while the VM is not running.',
      input: withVm({}), output: Runtime,
      run: (a) => s.vms.runtime(a.vm),
    }),
    tool({
      name: 'vm_errors',
      description: 'Recent errors of one VM, newest first: QEMU failures (with its stderr), failed operations and guest panics. Returns { errors: [{ id, at, source, message }] }. Use it when a VM is in state error or an operation failed with QEMU_FAILED.',
      input: withVm(ErrorsQuery.properties), output: VmErrors,
      run: (a) => ({ errors: s.vms.errors(a.vm, a.limit ?? 50) }),
    }),

    // ---- distro images --------------------------------------------------------------------------
    tool({
      name: 'list_distros',
      description: 'List the distro cloud images Grove can download (Debian, Ubuntu, Fedora, Alpine, AlmaLinux, Rocky, or what the configured catalog holds): { distros: [{ id, name, version, arch, format, url, checksum source (sha256/sha512/checksumUrl), downloaded, image (local file, size, digest) or null, download (under way) or null }] }. Use an id with download_distro.',
      input: Empty, output: DistroListResult,
      run: async () => ({ distros: await s.downloads.distros() }),
    }),
    tool({
      name: 'list_downloads',
      description: 'List image downloads, newest first: { downloads: [{ id, distro, state (queued, running, completed, failed, cancelled), bytes, totalBytes, bytesPerSecond, retries, restarts, error: { code, reason } or null, ... }] }.',
      input: Empty, output: DownloadListResult,
      run: () => ({ downloads: s.downloads.list(100) }),
    }),
    tool({
      name: 'download_distro',
      description: 'Download a distro\'s cloud image (an id from list_distros) into Grove\'s images folder: streamed, resumed after dropped connections, verified against its published checksum before it is used. Joins a download of the same image already under way; returns at once with a completed download when the image is already local. Without `wait` it returns the download right away (follow it with list_downloads); with `wait: true` it returns the completed download, or the download still under way after `timeoutSeconds`, and fails with the download\'s own code when it fails (DOWNLOAD_FAILED, CHECKSUM_MISMATCH, CHECKSUM_UNAVAILABLE, INSUFFICIENT_STORAGE) or is cancelled (DOWNLOAD_CANCELLED); the problem names the download id. Without `wait`, a later failure shows in list_downloads as state failed with error { code, reason }. Fails with DISTRO_NOT_FOUND for an unknown id.',
      input: DownloadDistroInput, output: Download,
      run: async (a) => {
        const { download } = await s.downloads.start(a.distro);
        return a.wait ? s.downloads.outcome(download.id, (a.timeoutSeconds ?? 300) * 1000) : download;
      },
    }),

    // ---- webhooks -------------------------------------------------------------------------------
    tool({
      name: 'list_webhooks',
      description: 'List registered webhooks: { webhooks: [{ id, url, events, description, hasSecret, enabled, disabledReason, ... }] }. Secrets are never returned. A hook is disabled (enabled false) once its receiver answered 410 Gone.',
      input: Empty, output: WebhookListResult,
      run: () => ({ webhooks: s.webhooks.list() }),
    }),
    tool({
      name: 'register_webhook',
      description: 'Register a URL to receive events as JSON POSTs (asynchronously, from a durable outbox, retried with backoff for 24 h). `events`: exact types (vm.started) or prefixes (vm.*); absent or empty means every event. With a `secret`, every delivery is signed (X-Nemeton-Secret HMAC and Standard Webhooks headers). Returns the hook (with its id for delete_webhook).',
      input: RegisterWebhookBody, output: Webhook,
      run: (a) => s.webhooks.register(a),
    }),
    tool({
      name: 'delete_webhook',
      description: 'Remove a webhook by id (from list_webhooks); its pending deliveries are dropped. Fails with NOT_FOUND for an unknown id. Returns { id, deleted: true }.',
      input: Type.Object({ id: WebhookParams.properties.id }, { additionalProperties: false }), output: WebhookDeleted,
      run: (a) => {
        s.webhooks.delete(a.id);
        return { id: a.id, deleted: true };
      },
    }),

    // ---- screen input (see, act, see) -----------------------------------------------------------
    ...screenTools(s),
    ...jobTools(s),
    ...waitForkTools(s),
  ];
}

const ScreenPixel = MouseInput.properties.mouse.properties;
const SCREEN_NOTE = 'Input goes to the VM\'s screen (its keyboard and absolute pointer), not the serial console; take_screenshot shows the effect. The VM must be running (INVALID_STATE otherwise).';

/** Keyboard and mouse for agents driving a graphical guest (an installer): thin faces over ScreenService. */
function screenTools(s: ApiServices): ToolDef[] {
  return [
    tool({
      name: 'send_keys',
      description: `Press keys on the VM's screen keyboard, in order: names such as enter, tab, escape, backspace, up, f1–f12, single letters/digits/punctuation, with modifiers joined by '-' (ctrl-alt-delete, ctrl-c, shift-tab, alt-f4, super). Returns { events }. ${SCREEN_NOTE}`,
      input: withVm(KeysInput.properties), output: InputResult,
      run: (a) => s.screen.input(a.vm, { keys: a.keys }),
    }),
    tool({
      name: 'type_text',
      description: `Type text on the VM's screen keyboard with a US layout (right key codes and shift states; "\\n" presses enter). Characters a US keyboard cannot type are refused. Returns once typed. ${SCREEN_NOTE}`,
      input: withVm(TextInput.properties), output: InputResult,
      run: (a) => s.screen.input(a.vm, { text: a.text }),
    }),
    tool({
      name: 'mouse_click',
      description: `Move the pointer to (x, y) in screen pixels (as in a full-size take_screenshot) and click: \`button\` left (default), right or middle; \`doubleClick\` for a double click. Returns { events, screen: { width, height } }. ${SCREEN_NOTE}`,
      input: withVm({ x: ScreenPixel.x, y: ScreenPixel.y, button: ScreenPixel.button, doubleClick: Type.Optional(Type.Boolean({ default: false })) }), output: InputResult,
      run: (a) => s.screen.input(a.vm, { mouse: { x: a.x, y: a.y, button: a.button ?? 'left', action: a.doubleClick ? 'double-click' : 'click' } }),
    }),
    tool({
      name: 'mouse_move',
      description: `Move the pointer to (x, y) in screen pixels without clicking (hover). Returns { events, screen: { width, height } }. ${SCREEN_NOTE}`,
      input: withVm({ x: ScreenPixel.x, y: ScreenPixel.y }), output: InputResult,
      run: (a) => s.screen.input(a.vm, { mouse: { x: a.x, y: a.y, action: 'move' } }),
    }),
  ];
}

// ---- durable jobs -------------------------------------------------------------------------------

const JobIdArg = { jobId: JobParams.properties.jid };
const McpExecInput = withVm({
  argv: ExecBody.properties.argv, command: ExecBody.properties.command, stdin: ExecBody.properties.stdin, stdinEncoding: ExecBody.properties.stdinEncoding,
  env: ExecBody.properties.env, cwd: ExecBody.properties.cwd,
  timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 50, description: 'How long to wait for the end before answering with the job id (the command goes on)' })),
  maxOutputBytes: ExecBody.properties.maxOutputBytes,
});
const McpExecResult = Type.Composite([ExecDetachedResult, Type.Object({
  running: Type.Boolean({ description: 'Still running: continue with job_wait / job_output / job_kill on jobId' }),
  stdoutNext: Type.Integer({ description: 'job_output `since` to continue stdout from' }),
  stderrNext: Type.Integer({ description: 'job_output `since` to continue stderr from' }),
})]);

function jobTools(s: ApiServices): ToolDef[] {
  return [
    tool({
      name: 'job_status',
      description: 'A job started by exec (or POST /vms/:id/jobs): { state (running, exited, lost), exitCode, signal, timedOut, stdout/stderr sizes, createdAt, endedAt }.',
      input: withVm(JobIdArg), output: Job,
      run: (a) => s.jobs.get(a.vm, a.jobId),
    }),
    tool({
      name: 'job_output',
      description: 'A page of a job\'s output: `stream` (stdout or stderr), from byte offset `since` (default 0), at most `limit` bytes (default 1 MiB). Returns { data, encoding, offset, nextOffset, size, ended }; call again from nextOffset until `ended`.',
      input: withVm({ ...JobIdArg, stream: JobOutputQuery.properties.stream, since: JobOutputQuery.properties.since, limit: JobOutputQuery.properties.limit }), output: JobOutput,
      run: async (a) => {
        const stream = a.stream ?? 'stdout';
        const r = await s.jobs.read(a.vm, a.jobId, stream, a.since ?? 0, a.limit);
        const text = asText(r.data, r.ended);
        return { stream, data: text.data, encoding: text.encoding, offset: r.offset, nextOffset: r.offset + text.used, size: r.size, ended: r.ended && text.used === r.data.length, state: r.job.state };
      },
    }),
    tool({
      name: 'job_wait',
      description: 'Wait for a job to end, at most `timeoutSeconds` (default 50: keep it below your client\'s request timeout), and return it as job_status does (still `running` if it has not ended by then; call again).',
      input: withVm({ ...JobIdArg, timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 50 })) }), output: Job,
      run: (a) => s.jobs.waitEnd(a.vm, a.jobId, (a.timeoutSeconds ?? 50) * 1000),
    }),
    tool({
      name: 'job_kill',
      description: 'Send `signal` (TERM by default, or KILL, HUP, USR1, USR2) to a running job\'s command and everything it started. Returns the job; it ends as the command reacts (job_wait).',
      input: withVm({ ...JobIdArg, signal: JobKillBody.properties.signal }), output: Job,
      run: (a) => s.jobs.kill(a.vm, a.jobId, a.signal ?? 'TERM'),
    }),
  ];
}
