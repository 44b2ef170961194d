import { errorMessage } from '../util/errors.js';
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { CloneService } from '../app/clone-service.js';
import { ConsoleService } from '../app/console/console-service.js';
import { HostService } from '../app/host-service.js';
import { DataLayout } from '../app/layout.js';
import { sweepLeftovers } from '../app/leftovers.js';
import { VmService } from '../app/vm-service.js';
import { WebhookService } from '../app/webhook-service.js';
import { ObservabilityService } from '../app/observability/observability-service.js';
import { VmLogService } from '../app/vm-log-service.js';
import { FsLogFiles } from '../storage/log-files.js';
import { SnapshotService } from '../app/snapshot-service.js';
import { DiskService } from '../app/disk-service.js';
import { BundleService } from '../app/bundle-service.js';
import { TarArchive } from '../storage/tar-archive.js';
import { ScreenshotService } from '../app/screenshot-service.js';
import { ScreenService } from '../app/screen-service.js';
import { JsImageEncoder } from '../system/image-encoder.js';
import { SqliteSnapshotRepo } from '../store/snapshot-repo.js';
import { buildApp } from '../api/rest/app.js';
import { EventBus } from '../events/event-bus.js';
import { chooseAccelerator } from '../hypervisor/qemu/accelerator.js';
import { QemuDriver } from '../hypervisor/qemu/driver.js';
import { openDb, type Db } from '../store/db.js';
import { Transactions } from '../store/transactions.js';
import { SqliteEventRepo } from '../store/event-repo.js';
import { SqliteVmErrorRepo } from '../store/vm-error-repo.js';
import { SqliteVmRepo } from '../store/vm-repo.js';
import { SqliteWebhookRepo } from '../store/webhook-repo.js';
import { FileDiskPool } from '../storage/disk-pool.js';
import { ConsoleLogFile } from '../storage/console-log-file.js';
import { checkBundleManifest } from '../api/schemas/bundle-manifest.js';
import { QemuImg } from '../storage/qemu-img.js';
import { LinuxHostProbe } from '../system/host-probe.js';
import { retryPolicy } from '../webhooks/backoff.js';
import { OutboxWriter } from '../webhooks/outbox.js';
import { DeliveryWorker, WORKER_DEFAULTS } from '../webhooks/worker.js';
import type { DaemonConfig } from './config.js';
import { loadToken } from './token.js';
import { checkForeignSecret, createPrivateFile, tightenDataDir } from './data-permissions.js';
import { isLoopbackName } from '../api/rest/security.js';
import { CloudInitService } from '../app/cloud-init-service.js';
import { IsoSeedStore } from '../storage/seed-image.js';
import { FileSshIdentity } from '../system/ssh-identity.js';
import { LoopbackPorts } from '../system/host-ports.js';
import { DownloadService } from '../app/downloads/download-service.js';
import { NodeHttpFetcher } from '../net/http-fetcher.js';
import { FsImageFiles } from '../storage/image-files.js';
import { SqliteDownloadRepo, SqliteImageRepo } from '../store/download-repo.js';
import { loadCatalog } from './catalog.js';
import { AgentService } from '../app/agent/agent-service.js';
import { ExecService } from '../app/agent/exec-service.js';
import { GuestFileService } from '../app/agent/file-service.js';
import { QgaAgentConnector } from '../hypervisor/qemu/qga-agent.js';
import { FsHostFiles } from '../storage/host-files.js';
import { FsVmFiles } from '../storage/vm-files.js';
import { LaunchService } from '../app/launch/launch-service.js';
import { GuestReadiness } from '../app/launch/guest-readiness.js';
import { SshReadiness } from '../app/launch/ssh-readiness.js';
import { NetTcpGreeting } from '../net/tcp-greeting.js';
import { FsSavedStateFiles } from '../storage/saved-state-files.js';
import { JobService } from '../app/jobs/job-service.js';
import { SqliteJobRepo } from '../store/job-repo.js';
import { FsJobOutputFiles } from '../storage/job-output-files.js';
import { WaitService } from '../app/wait/wait-service.js';
import { ForkService } from '../app/fork/fork-service.js';

const require = createRequire(import.meta.url);
export const GROVE_VERSION: string = (require('../../../package.json') as { version: string }).version;

export interface Daemon {
  app: FastifyInstance;
  url: string;
  token: string;
  tokenOrigin: string;
  tokenCreated: boolean;
  vms: VmService;
  log: Logger;
  close(): Promise<void>;
}

export function makeLogger(level: string): Logger {
  if (process.stdout.isTTY) {
    return pino({ level, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return pino({ level });
}

/** The composition root: the only place that knows every adapter. Nothing imports this module. */
export async function startDaemon(cfg: DaemonConfig, log: Logger = makeLogger(cfg.logLevel)): Promise<Daemon> {
  // First, before anything is created: an unusable catalog is a start-up error naming the entry and field.
  const fetcher = new NodeHttpFetcher({ idleTimeoutMs: 60_000, maxRedirects: 5, userAgent: `grove/${GROVE_VERSION}` });
  const catalog = await loadCatalog(cfg.catalog, fetcher);
  // Its real path: qemu resolves relative backing names against the name it is given, so every layer
  // path must be free of symlinks (a data directory under a symlinked /home included).
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  const layout = new DataLayout(await realpath(cfg.dataDir));
  for (const dir of [layout.root, layout.vms, layout.disks, layout.images, layout.transfer]) await mkdir(dir, { recursive: true, mode: 0o700 });
  const tok = await loadToken({ tokenValue: cfg.tokenValue, tokenFile: cfg.tokenFile, defaultFile: layout.token });

  // Before anything is opened: `--accel kvm` on a host where KVM cannot boot a guest refuses to start.
  const accel = await chooseAccelerator(cfg.accelerator, { qemuBinary: cfg.qemuBinary });
  log[accel.fellBack ? 'warn' : 'info']({ accelerator: accel.accelerator, why: accel.why, probeMs: accel.probeMs }, 'accelerator chosen');

  await createPrivateFile(layout.db);
  const db: Db = openDb(layout.db);
  // After the database made its -wal and -shm: a data dir from an older Grove (or another umask) is tightened.
  for (const f of [...await tightenDataDir(layout), ...cfg.tokenFile ? [await checkForeignSecret(cfg.tokenFile)] : []]) {
    if (f !== null) log.warn(f, f.warning === undefined ? 'permissions tightened: group or others could read a data file' : 'permissions too loose');
  }
  // Memory (the VM cache, event subscribers) follows the database only once a transaction commits.
  const tx = new Transactions(db);
  const vmRepo = new SqliteVmRepo(db, tx);
  const transact = tx.run;
  const bus = new EventBus(new SqliteEventRepo(db), { retention: cfg.eventRetention }, transact, tx.afterCommit);
  // Hooked before anything can publish: every event from here on gets its webhook deliveries in its own transaction.
  const webhookRepo = new SqliteWebhookRepo(db);
  const webhookWorker = new DeliveryWorker(webhookRepo, { ...WORKER_DEFAULTS, policy: retryPolicy(cfg.webhookBackoffMs), log: log.child({ component: 'webhooks' }) });
  bus.onPersist(new OutboxWriter(webhookRepo, webhookWorker.wake).write);
  const webhooks = new WebhookService({ repo: webhookRepo, events: bus, dispatcher: webhookWorker });
  const hypervisor = new QemuDriver({ qemuBinary: cfg.qemuBinary, accelerator: accel.accelerator, log: log.child({ component: 'qemu' }) });
  const disks = new QemuImg(cfg.qemuImgBinary);
  const consoleLog = log.child({ component: 'console' });
  const consoleService = new ConsoleService({
    vms: vmRepo, events: bus, log: new ConsoleLogFile(), paths: (id) => layout.vmPaths(id), historyBytes: cfg.consoleHistoryBytes,
    onTrimError: (vm, err) => consoleLog.warn({ vm, err: errorMessage(err) }, 'console history could not be trimmed'),
    warn: (fields, msg) => consoleLog.warn(fields, msg),
  });
  const pool = new FileDiskPool({
    places: { vms: layout.vms, disks: layout.disks, diskOf: (id) => layout.vmPaths(id).disk }, disks, log: log.child({ component: 'disks' }),
  });
  const downloads = new DownloadService({
    catalog: catalog.catalog, fetcher, files: new FsImageFiles(), downloads: new SqliteDownloadRepo(db), images: new SqliteImageRepo(db),
    events: bus, paths: layout, log: log.child({ component: 'downloads' }),
  });
  const cloudInit = new CloudInitService({ vms: vmRepo, seeds: new IsoSeedStore(), keys: new FileSshIdentity(layout.ssh), ports: new LoopbackPorts() });
  // The agent service needs the VM service; the stop path reaches back to it through this late binding.
  let agentsLate: AgentService | null = null;
  const vms = new VmService({
    vms: vmRepo, errors: new SqliteVmErrorRepo(db), events: bus, hypervisor, disks, pool, layout, console: consoleService,
    log: log.child({ component: 'vms' }), transact, cloudInit, guestShutdown: async (id) => agentsLate?.requestShutdown(id) ?? false, files: new FsVmFiles(), savedStates: new FsSavedStateFiles(),
    images: downloads,
  });
  const hostProbe = new LinuxHostProbe();
  const host = new HostService({ probe: hostProbe, hypervisor, layout, vms, groveVersion: GROVE_VERSION, acceleratorReason: accel.why });

  const agents = new AgentService({ vms, layout, connector: new QgaAgentConnector(), events: bus, feed: bus, log: log.child({ component: 'agent' }) });
  agentsLate = agents;
  const snapshotRepo = new SqliteSnapshotRepo(db);
  const snapshots = new SnapshotService({
    vms, snapshots: snapshotRepo, disks, layout, events: bus, log: log.child({ component: 'snapshots' }), quiesce: agents,
    freeDiskBytes: (path) => hostProbe.freeDiskBytes(path),
  });
  const recovered = await vms.recover();
  if (recovered.adopted.length + recovered.reconciled.length > 0) log.info(recovered, 'recovered VMs from the previous run');

  const reconciled = await snapshots.reconcile();
  if (reconciled.removedRows + reconciled.removedTags > 0) log.warn(reconciled, 'snapshot metadata reconciled with the disks');
  // Folders and layers left behind by an import, clone or delete the previous run did not finish.
  await sweepLeftovers(layout, log);
  await pool.collect().catch((e: unknown) => log.warn({ err: errorMessage(e) }, 'disk layer collection failed'));
  // Before the API answers: a pull asked for right away joins the download the previous run left.
  const resumed = await downloads.recover();
  log.info({ catalog: catalog.source, distros: catalog.catalog.distros.length, resumedDownloads: resumed.resumed }, 'distro catalog loaded');
  const provisioning = vms.resumeProvisioning();
  if (provisioning.length > 0) log.info({ vms: provisioning }, 'VMs waiting for their distro image again');
  agents.start();
  const jobs = new JobService({ vms, agents, repo: new SqliteJobRepo(db), files: new FsJobOutputFiles(), layout, events: bus, log: log.child({ component: 'jobs' }) });
  const reattached = await jobs.start();
  if (reattached > 0) log.info({ jobs: reattached }, 're-attached to jobs still running in their guests');
  const wait = new WaitService({ vms, console: consoleService, agents, feed: bus, greeting: new NetTcpGreeting() });
  const forks = new ForkService({
    vms, pool, disks, files: new FsVmFiles(), savedStates: new FsSavedStateFiles(), ports: new LoopbackPorts(), layout, agents, wait, log: log.child({ component: 'fork' }),
  });
  const app = await buildApp({
    services: {
      vms, console: consoleService, host, events: bus, webhooks, snapshots, version: GROVE_VERSION, startedAt: Date.now(), cloudInit,
      disks: new DiskService({ vms, disks, layout }),
      clones: new CloneService({ vms, pool, disks, snapshots: snapshotRepo, layout, quiesce: agents }),
      downloads,
      launch: new LaunchService({ vms, readiness: new GuestReadiness({ vms, probes: { ssh: new SshReadiness(new NetTcpGreeting()) } }), wait }),
      observability: new ObservabilityService({ vms, events: bus, webhooks }),
      logs: new VmLogService({ vms, layout, files: new FsLogFiles() }),
      bundles: new BundleService({ vms, snapshots: snapshotRepo, disks, layout, archive: new TarArchive(), groveVersion: GROVE_VERSION, checkManifest: checkBundleManifest }), screenshots: new ScreenshotService({ vms, layout, images: new JsImageEncoder() }),
      agents, exec: new ExecService(agents, jobs), jobs, files: new GuestFileService(agents, new FsHostFiles(), layout.transfer),
      screen: new ScreenService({ vms }),
      wait, forks,
    },
    token: tok.token,
    allowedHosts: cfg.allowedHosts,
    logger: log.child({ component: 'http' }),
    ...(cfg.tls ? { https: { cert: await readFile(cfg.tls.cert), key: await readFile(cfg.tls.key) } } : {}),
  });
  if (!isLoopbackName(cfg.host)) log.warn({ host: cfg.host }, 'listening on a non-loopback address: anyone who can reach it and holds the token controls every VM');
  await app.listen({ host: cfg.host, port: cfg.port });
  const url = `${cfg.tls ? 'https' : 'http'}://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${cfg.port}`;
  // Deliveries left pending by the previous run (even one killed mid-attempt) are sent from here on.
  webhookWorker.start();
  // Not awaited: the API answers while the autostart VMs boot one by one; a failure is that VM's own.
  void vms.autostart().catch((e: unknown) => log.error({ err: errorMessage(e) }, 'autostart stopped'));
  let closed = false;
  return {
    app, url, token: tok.token, tokenOrigin: tok.origin, tokenCreated: tok.created, vms, log,
    async close() {
      if (closed) return;
      closed = true;
      await vms.stopAutostart();
      await app.close();
      await jobs.close();
      await agents.close();
      vms.detachAll();
      await downloads.close();
      await webhookWorker.close();
      db.close();
    },
  };
}
