import type { Readable } from 'node:stream';
import { ApiError, UnreachableError, apiErrorFrom, networkReason } from './errors.js';
import { DEFAULT_TIMEOUT_MS, fetchWithoutTimeouts, readText, send, waitBound, type Deadline, type HttpAnswer } from './http.js';
import type {
  CloneVm, ConsoleCleared, ConsolePage, ConsoleSent, CreateVm, ExecuteOutcome, ExecuteRequest, HealthInfo, Host, HostMetrics, RestartOptions,
  RegisterWebhook, StartOptions, StartOutcome, StopAllOutcome, StopOptions, UpdateVm, Vm, VmErrorList, VmRuntime, Webhook,
  CreateSnapshot, RestoreOutcome, Screenshot, Snapshot, SshAccess, SuspendStatus, Distro, Download, LaunchOutcome, LaunchVm,
  GuestExecOutcome, GuestExecRequest, GuestFileList, GuestMkdir, GuestMkdirOutcome, GuestOsInfo, GuestUploadOutcome, VmIp, QemuLog,
  WebhookDelivery, WebhookTestOutcome, ExportWrittenOutcome, ImportedVm, Job, JobRequest,
} from './types.js';
import type { ScreenInputBody, ScreenInputResult } from './types.js';
import type { ForkOutcome, ForkRequest, WaitOutcome, WaitRequest } from './types.js';

export interface ClientOptions {
  /** Daemon base URL, e.g. `http://127.0.0.1:22100` (the `/api/v1` prefix is added here). */
  url: string;
  /** Bearer token; requests go without one when it is absent (and the daemon answers 401). */
  token?: string | undefined;
  /** Bound of a call that names no wait of its own (default 300 s); calls that wait pass their own. */
  defaultTimeoutMs?: number | undefined;
}

export interface ConsoleReadOptions {
  since?: number;
  limit?: number;
  stripAnsi?: boolean;
}

/** Export and import move whole disks: bounded by hours, not the default. */
const BUNDLE_TIMEOUT_MS = 6 * 3_600_000;

/** A launch may first download its image, which its own timeout does not count. */
const DOWNLOAD_ALLOWANCE_MS = 3_600_000;

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
}

/**
 * Typed REST client of the Grove API. Every failure is one of two errors: `ApiError` (the daemon answered
 * with a problem) or `UnreachableError` (no answer at all).
 */
export class GroveClient {
  readonly url: string;
  readonly apiBase: string;
  readonly token: string | undefined;
  readonly defaultTimeoutMs: number;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.apiBase = `${this.url}/api/v1`;
    this.token = opts.token;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The bound of a call that waits `seconds` (or the daemon's default for it) on the daemon side. */
  private waits(seconds: number | undefined, daemonDefault: number): number {
    return Math.max(waitBound(seconds, daemonDefault), this.defaultTimeoutMs);
  }

  /** Headers every request carries (also used by the event and console streams). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  endpoint(path: string, query: Query = {}): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return `${this.apiBase}${path}${qs ? `?${qs}` : ''}`;
  }

  /**
   * One request; JSON in, JSON out (undefined for 204). Over node:http, bounded by `timeoutMs` (default:
   * the client's) from the request to the end of the answer, and by nothing else.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { answer: res, deadline } = await this.send(method, path, opts);
    const text = await readText(res, deadline, this.url);
    if (res.status < 200 || res.status > 299) throw apiErrorFrom(res.status, res.statusText, text);
    if (res.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'BAD_RESPONSE', `the daemon sent a response that is not JSON: ${text.slice(0, 120)}`);
    }
  }

  /** The answer as a stream (its deadline ends when the headers arrive); bodies may be streams too. */
  async send(method: string, path: string, opts: RequestOptions & { raw?: Readable | Buffer } = {}): Promise<{ answer: HttpAnswer; deadline: Deadline }> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeaders(), ...(opts.headers ?? {}) };
    let body: string | Buffer | Readable | undefined = opts.raw;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    return send({ method, url: this.endpoint(path, opts.query), headers, body, timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs, signal: opts.signal }, this.url);
  }

  /** The response itself, for streams; network failures become UnreachableError, HTTP errors are left to the caller. */
  async fetchRaw(method: string, path: string, opts: { body?: unknown; query?: Query; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeaders(), ...(opts.headers ?? {}) };
    const init: RequestInit = { method, headers };
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (opts.signal) init.signal = opts.signal;
    try {
      // Streams (events, job output, files) may stay silent for long: no client-side limit ends them.
      return await fetchWithoutTimeouts(this.endpoint(path, opts.query), init);
    } catch (e) {
      if (e instanceof Error && e.name === 'AbortError') throw e;
      throw new UnreachableError(this.url, networkReason(e));
    }
  }

  private vm(ref: string, rest = ''): string {
    return `/vms/${encodeURIComponent(ref)}${rest}`;
  }

  // ---- host -------------------------------------------------------------------------------------
  health(): Promise<HealthInfo> { return this.request('GET', '/health'); }
  host(): Promise<Host> { return this.request('GET', '/host'); }
  metrics(): Promise<HostMetrics> { return this.request('GET', '/metrics'); }

  // ---- VMs --------------------------------------------------------------------------------------
  listVms(): Promise<Vm[]> { return this.request('GET', '/vms'); }
  getVm(ref: string): Promise<Vm> { return this.request('GET', this.vm(ref)); }
  createVm(body: CreateVm): Promise<Vm> { return this.request('POST', '/vms', { body }); }
  /** Create from a distro + download if needed + start + wait until ready (see POST /vms/launch). */
  launchVm(body: LaunchVm): Promise<LaunchOutcome> { return this.request('POST', '/vms/launch', { body, timeoutMs: this.waits(body.timeoutSeconds, 300) + DOWNLOAD_ALLOWANCE_MS }); }
  cloneVm(ref: string, body: CloneVm = {}): Promise<Vm> { return this.request('POST', this.vm(ref, '/clone'), { body }); }
  updateVm(ref: string, body: UpdateVm): Promise<Vm> { return this.request('PATCH', this.vm(ref), { body }); }
  deleteVm(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.request('DELETE', this.vm(ref), { query: { force: opts.force ? true : undefined } });
  }
  reorderVms(order: string[]): Promise<Vm[]> { return this.request('PUT', '/vms/order', { body: { order } }); }
  stopAll(opts: StopOptions = {}): Promise<StopAllOutcome> {
    return this.request('POST', '/vms/stop-all', { body: opts, timeoutMs: this.waits(opts.timeoutSeconds, 60) });
  }

  // ---- lifecycle --------------------------------------------------------------------------------
  startVm(ref: string, opts: StartOptions = {}): Promise<StartOutcome> {
    return this.request('POST', this.vm(ref, '/start'), { body: opts, timeoutMs: this.waits(opts.waitFor?.timeoutSeconds, 60) });
  }
  stopVm(ref: string, opts: StopOptions = {}): Promise<Vm> {
    return this.request('POST', this.vm(ref, '/stop'), { body: opts, timeoutMs: this.waits(opts.timeoutSeconds, 60) });
  }
  forceStopVm(ref: string): Promise<Vm> { return this.request('POST', this.vm(ref, '/force-stop'), { body: {} }); }
  restartVm(ref: string, opts: RestartOptions = {}): Promise<Vm> {
    return this.request('POST', this.vm(ref, '/restart'), { body: opts, timeoutMs: this.waits(opts.timeoutSeconds, 60) });
  }
  pauseVm(ref: string): Promise<Vm> { return this.request('POST', this.vm(ref, '/pause'), { body: {} }); }
  resumeVm(ref: string): Promise<Vm> { return this.request('POST', this.vm(ref, '/resume'), { body: {} }); }
  runtime(ref: string): Promise<VmRuntime> { return this.request('GET', this.vm(ref, '/runtime')); }
  errors(ref: string, limit?: number): Promise<VmErrorList> { return this.request('GET', this.vm(ref, '/errors'), { query: { limit } }); }
  sshAccess(ref: string): Promise<SshAccess> { return this.request('GET', this.vm(ref, '/ssh')); }
  qemuLog(ref: string, opts: { since?: number; maxBytes?: number } = {}): Promise<QemuLog> {
    return this.request('GET', this.vm(ref, '/qemu-log'), { query: { since: opts.since, maxBytes: opts.maxBytes } });
  }

  suspendVm(ref: string): Promise<Vm> { return this.request('POST', this.vm(ref, '/suspend'), { body: {} }); }
  suspendStatus(ref: string): Promise<SuspendStatus> { return this.request('GET', this.vm(ref, '/suspend-status')); }
  resizeDisk(ref: string, sizeGB: number): Promise<Vm> { return this.request('POST', this.vm(ref, '/disk/resize'), { body: { sizeGB } }); }
  screenshot(ref: string, format: 'jpeg' | 'png' = 'jpeg', size: { scale?: number; maxWidth?: number } = {}): Promise<Screenshot> {
    return this.request('GET', this.vm(ref, '/screenshot'), { query: { format, scale: size.scale, maxWidth: size.maxWidth } });
  }
  /** Keyboard or mouse input to the VM's screen: `{ keys }`, `{ text }`, `{ mouse }` or `{ scroll }`. */
  sendInput(ref: string, body: ScreenInputBody): Promise<ScreenInputResult> { return this.request('POST', this.vm(ref, '/input'), { body }); }

  // ---- snapshots --------------------------------------------------------------------------------
  listSnapshots(ref: string): Promise<Snapshot[]> { return this.request('GET', this.vm(ref, '/snapshots')); }
  createSnapshot(ref: string, body: CreateSnapshot): Promise<Snapshot> { return this.request('POST', this.vm(ref, '/snapshots'), { body }); }
  restoreSnapshot(ref: string, sid: string, opts: { force?: boolean } = {}): Promise<RestoreOutcome> {
    return this.request('POST', this.vm(ref, `/snapshots/${encodeURIComponent(sid)}/restore`), { body: opts });
  }
  deleteSnapshot(ref: string, sid: string): Promise<void> { return this.request('DELETE', this.vm(ref, `/snapshots/${encodeURIComponent(sid)}`)); }

  // ---- console ----------------------------------------------------------------------------------
  readConsole(ref: string, opts: ConsoleReadOptions = {}): Promise<ConsolePage> {
    return this.request('GET', this.vm(ref, '/console'), { query: { since: opts.since, limit: opts.limit, strip: opts.stripAnsi ? 'ansi' : undefined } });
  }
  sendConsole(ref: string, input: { text: string } | { keys: string[] }): Promise<ConsoleSent> {
    return this.request('POST', this.vm(ref, '/console'), { body: input });
  }
  clearConsole(ref: string): Promise<ConsoleCleared> { return this.request('DELETE', this.vm(ref, '/console')); }
  /** Runs a shell command over the serial console (not the guest agent). */
  consoleExecute(ref: string, req: ExecuteRequest): Promise<ExecuteOutcome> {
    return this.request('POST', this.vm(ref, '/console/execute'), { body: req, timeoutMs: this.waits(req.timeoutSeconds, 30) });
  }
  /** ws:// URL of the interactive console of a VM. */
  consoleSocketUrl(ref: string): string {
    return this.endpoint(this.vm(ref, '/console/ws')).replace(/^http/, 'ws');
  }

  // ---- guest agent ------------------------------------------------------------------------------
  /** Runs a command in the guest through its QEMU guest agent. */
  execInGuest(ref: string, req: GuestExecRequest): Promise<GuestExecOutcome> {
    return this.request('POST', this.vm(ref, '/exec'), { body: req, timeoutMs: this.waits(req.timeoutSeconds, 30) });
  }
  vmIp(ref: string): Promise<VmIp> { return this.request('GET', this.vm(ref, '/ip')); }
  osInfo(ref: string): Promise<GuestOsInfo> { return this.request('GET', this.vm(ref, '/osinfo')); }
  listGuestFiles(ref: string, path: string): Promise<GuestFileList> { return this.request('GET', this.vm(ref, '/files'), { query: { path } }); }
  deleteGuestFile(ref: string, path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    return this.request('DELETE', this.vm(ref, '/files'), { query: { path, recursive: opts.recursive ? true : undefined } });
  }
  makeGuestDirectory(ref: string, body: GuestMkdir): Promise<GuestMkdirOutcome> { return this.request('POST', this.vm(ref, '/files/mkdir'), { body }); }

  // ---- durable jobs -----------------------------------------------------------------------------
  createJob(ref: string, req: JobRequest): Promise<{ id: string; job: Job }> { return this.request('POST', this.vm(ref, '/jobs'), { body: req }); }
  listJobs(ref: string): Promise<Job[]> { return this.request('GET', this.vm(ref, '/jobs')); }
  getJob(ref: string, jobId: string): Promise<Job> { return this.request('GET', this.vm(ref, `/jobs/${encodeURIComponent(jobId)}`)); }
  jobStdin(ref: string, jobId: string, body: { data?: string; encoding?: 'utf8' | 'base64'; eof?: boolean }): Promise<Job> {
    return this.request('POST', this.vm(ref, `/jobs/${encodeURIComponent(jobId)}/stdin`), { body });
  }
  killJob(ref: string, jobId: string, signal?: 'TERM' | 'KILL' | 'INT' | 'HUP' | 'QUIT' | 'USR1' | 'USR2'): Promise<Job> {
    return this.request('POST', this.vm(ref, `/jobs/${encodeURIComponent(jobId)}/kill`), { body: signal ? { signal } : {} });
  }
  /** A job's output stream as raw bytes from `since`; with `follow` until the job has ended. */
  async jobOutput(ref: string, jobId: string, opts: { stream?: 'stdout' | 'stderr'; since?: number; follow?: boolean; signal?: AbortSignal } = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.fetchRaw('GET', this.vm(ref, `/jobs/${encodeURIComponent(jobId)}/output`), {
      query: { stream: opts.stream, since: opts.since, follow: opts.follow ? true : undefined },
      headers: { accept: 'application/octet-stream, application/problem+json' }, ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!res.ok || !res.body) throw apiErrorFrom(res.status, res.statusText, await res.text().catch(() => ''));
    return res.body;
  }

  /** A guest file's bytes as a stream (the response body); a problem answer is thrown as ApiError. */
  async downloadGuestFile(ref: string, path: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.fetchRaw('GET', this.vm(ref, '/files/content'), { query: { path }, headers: { accept: 'application/octet-stream, application/problem+json' } });
    if (!res.ok || !res.body) throw apiErrorFrom(res.status, res.statusText, await res.text().catch(() => ''));
    return res.body;
  }

  /** Streams `data` into a guest file (never buffered whole). */
  async uploadGuestFile(ref: string, path: string, data: AsyncIterable<Uint8Array>, opts: { mode?: string; overwrite?: boolean } = {}): Promise<GuestUploadOutcome> {
    const url = this.endpoint(this.vm(ref, '/files/content'), { path, mode: opts.mode, overwrite: opts.overwrite });
    let res: Response;
    try {
      // Sent as a chunked body, never buffered whole.
      res = await fetchWithoutTimeouts(url, {
        method: 'PUT', headers: { ...this.authHeaders(), accept: 'application/json', 'content-type': 'application/octet-stream' },
        body: data as unknown as RequestInit['body'],
      });
    } catch (e) {
      throw new UnreachableError(this.url, networkReason(e));
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw apiErrorFrom(res.status, res.statusText, text);
    return JSON.parse(text) as GuestUploadOutcome;
  }

  // ---- webhooks ---------------------------------------------------------------------------------
  listWebhooks(): Promise<Webhook[]> { return this.request('GET', '/webhooks'); }
  registerWebhook(body: RegisterWebhook): Promise<Webhook> { return this.request('POST', '/webhooks', { body }); }
  deleteWebhook(id: string): Promise<void> { return this.request('DELETE', `/webhooks/${encodeURIComponent(id)}`); }
  testWebhook(id: string): Promise<WebhookTestOutcome> { return this.request('POST', `/webhooks/${encodeURIComponent(id)}/test`, { body: {} }); }
  async webhookDeliveries(id: string, limit?: number): Promise<WebhookDelivery[]> {
    return (await this.request<{ deliveries: WebhookDelivery[] }>('GET', `/webhooks/${encodeURIComponent(id)}/deliveries`, { query: { limit } })).deliveries;
  }

  // ---- bundles ----------------------------------------------------------------------------------
  /** Writes the bundle into the daemon's `<data>/transfer` (the path is relative to it). */
  exportToTransfer(ref: string, path: string, gzip: boolean): Promise<ExportWrittenOutcome> {
    return this.request('POST', this.vm(ref, '/export'), { body: { path, compression: gzip ? 'gzip' : 'none' }, timeoutMs: BUNDLE_TIMEOUT_MS });
  }
  /** The bundle's bytes as a stream (tar, or gzip'd tar). */
  async exportStream(ref: string, gzip: boolean): Promise<Readable> {
    const { answer, deadline } = await this.send('POST', this.vm(ref, '/export'), {
      body: { compression: gzip ? 'gzip' : 'none' }, headers: { accept: 'application/x-tar, application/gzip, application/problem+json' }, timeoutMs: BUNDLE_TIMEOUT_MS,
    });
    deadline.clear();
    if (answer.status !== 200) throw apiErrorFrom(answer.status, answer.statusText, await readText(answer, deadline, this.url));
    return answer.body;
  }
  /** Imports a bundle named in the daemon's `<data>/transfer`. */
  importFromTransfer(path: string, name?: string): Promise<ImportedVm> {
    return this.request('POST', '/vms/import', { body: { path, ...(name !== undefined ? { name } : {}) }, timeoutMs: BUNDLE_TIMEOUT_MS });
  }
  /** Uploads a bundle (streamed, never buffered whole). */
  async importStream(data: Readable, gzip: boolean, name?: string): Promise<ImportedVm> {
    const { answer, deadline } = await this.send('POST', '/vms/import', {
      raw: data, query: { name }, headers: { 'content-type': gzip ? 'application/gzip' : 'application/x-tar' }, timeoutMs: BUNDLE_TIMEOUT_MS,
    });
    const text = await readText(answer, deadline, this.url);
    if (answer.status !== 201) throw apiErrorFrom(answer.status, answer.statusText, text);
    return JSON.parse(text) as ImportedVm;
  }

  // ---- distro images ----------------------------------------------------------------------------
  listDistros(): Promise<Distro[]> { return this.request('GET', '/distros'); }
  listDownloads(): Promise<Download[]> { return this.request('GET', '/downloads'); }
  /** Starts (or joins) the download of a distro's image; a completed one when the image is already local. */
  startDownload(distro: string): Promise<Download> { return this.request('POST', '/downloads', { body: { distro } }); }
  getDownload(id: string): Promise<Download> { return this.request('GET', `/downloads/${encodeURIComponent(id)}`); }
  cancelDownload(id: string): Promise<Download> { return this.request('DELETE', `/downloads/${encodeURIComponent(id)}`); }
  removeImage(distro: string): Promise<void> { return this.request('DELETE', `/images/${encodeURIComponent(distro)}`); }

  // ---- wait and fork ----------------------------------------------------------------------------
  /** Waits server-side until the conditions hold (see POST /vms/:id/wait). */
  waitVm(ref: string, body: WaitRequest): Promise<WaitOutcome> { return this.request('POST', this.vm(ref, '/wait'), { body }); }
  /** N running copies of a running VM from its live state (see POST /vms/:id/fork). */
  forkVm(ref: string, body: ForkRequest): Promise<ForkOutcome> { return this.request('POST', this.vm(ref, '/fork'), { body }); }
}
