import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';

import { Empty, VmRefParams, responses } from '../schemas/common.js';
import {
  CloneVmBody, CreateVmBody, DeleteQuery, ErrorsQuery, ReorderBody, RestartBody, Runtime, StartBody, StartResult, StopAllResult,
  SshAccess, StopBody, SuspendStatus, UpdateVmBody, VmRef, VmErrors, VmList,
} from '../schemas/vm.js';
import type { ApiServices } from './context.js';
import { keptJson } from '../known-json.js';

type Ref = { Params: Static<typeof VmRefParams> };
const tags = ['VMs'];
const lifecycle = ['Lifecycle'];

export async function vmRoutes(app: FastifyInstance, { services: s }: { services: ApiServices }): Promise<void> {
  app.get('/vms', {
    schema: { tags, summary: 'List VMs', description: 'All VMs in their `order`, each with its guest agent status (`agent`).', operationId: 'listVms', response: responses({ 200: VmList }, []) },
  }, async (_req, reply) => {
    // The service hands out the same list object until a VM changes: its JSON is built once per change.
    return reply.type('application/json; charset=utf-8').send(keptJson(s.agents.list()));
  });

  app.post<{ Body: CreateVmBody }>('/vms', {
    schema: {
      tags, summary: 'Create a VM', operationId: 'createVm',
      description: 'Defines a VM from a catalog `distro` (a copy-on-write layer over its verified image, with cloud-init and an SSH forward), a kernel+initrd (direct boot), '
        + 'a disk image copied as its disk, or a blank disk plus an ISO; one of them is required. Host paths must lie inside `<data>/images` or `<data>/transfer`. '
        + '201: the VM is `stopped`. 202: its distro image is downloading (started or joined); the VM is `provisioning` and becomes `stopped` once the image is verified '
        + '(event `vm.updated`), or `error` with the download\'s reason and code (event `vm.error`). 404 DISTRO_NOT_FOUND for an unknown distro.',
      body: CreateVmBody, response: responses({ 201: VmRef, 202: VmRef }, [404, 409, 502, 507]),
    },
  }, async (req, reply) => {
    const vm = await s.vms.create(req.body);
    return reply.code(vm.state === 'provisioning' ? 202 : 201).header('location', `/api/v1/vms/${vm.id}`).send(vm);
  });

  app.post<Ref & { Body: CloneVmBody }>('/vms/:id/clone', {
    schema: {
      tags, summary: 'Clone a VM', operationId: 'cloneVm',
      description: 'Copy-on-write clone (state `stopped`) with the source\'s hardware, boot files, network and current disk; the source may be running '
        + '(crash-consistent: what a power cut would leave). O(1) in disk size: the source\'s disk becomes a read-only base under two new layers, or is '
        + 'reflinked where the filesystem can. A source whose disk holds internal snapshots is reflinked or, without reflink, its top layer is copied; '
        + 'the clone then has the same snapshots. Host port forwards are not copied unless `network` is given. The `vm.created` event names the source and the '
        + 'method used (`overlay`, `reflink`, `copy`).',
      params: VmRefParams, body: CloneVmBody, response: responses({ 201: VmRef }, [404, 409, 502, 507]),
    },
  }, async (req, reply) => {
    const { vm } = await s.clones.clone(req.params.id, req.body);
    return reply.code(201).header('location', `/api/v1/vms/${vm.id}`).send(vm);
  });

  app.put<{ Body: Static<typeof ReorderBody> }>('/vms/order', {
    schema: { tags, summary: 'Reorder VMs', operationId: 'reorderVms', body: ReorderBody, response: responses({ 200: VmList }, [404]) },
  }, async (req) => s.vms.reorder(req.body.order));

  app.post<{ Body: Static<typeof StopBody> }>('/vms/stop-all', {
    schema: {
      tags: lifecycle, summary: 'Stop all running VMs', operationId: 'stopAll',
      description: 'ACPI power-down of every running or paused VM, in parallel; `force` cuts power of those that do not stop in time.',
      body: StopBody, response: responses({ 200: StopAllResult }, []),
    },
  }, async (req) => s.vms.stopAll(req.body));

  app.get<Ref>('/vms/:id', {
    schema: { tags, summary: 'Get a VM', operationId: 'getVm', description: 'The VM, with `agent` telling whether its guest agent answers (null unless running or paused).', params: VmRefParams, response: responses({ 200: VmRef }, [404]) },
  }, async (req, reply) => {
    // Likewise one VM's details, the same object until it or its agent changes.
    return reply.type('application/json; charset=utf-8').send(keptJson(s.agents.details(req.params.id)));
  });

  app.patch<Ref & { Body: UpdateVmBody }>('/vms/:id', {
    schema: {
      tags, summary: 'Update a VM', operationId: 'updateVm', description: 'Rename and set `autostart` at any time; cpu, memory and network only while stopped.',
      params: VmRefParams, body: UpdateVmBody, response: responses({ 200: VmRef }, [404, 409]),
    },
  }, async (req) => s.vms.update(req.params.id, req.body));

  app.delete<Ref & { Querystring: Static<typeof DeleteQuery> }>('/vms/:id', {
    schema: {
      tags, summary: 'Delete a VM', operationId: 'deleteVm', description: 'Removes the VM and its files. Stopped VMs only, unless `force=true`.',
      params: VmRefParams, querystring: DeleteQuery, response: responses({ 204: null }, [404, 409]),
    },
  }, async (req, reply) => {
    await s.vms.delete(req.params.id, req.query.force ?? false);
    return reply.code(204).send();
  });

  app.post<Ref & { Body: StartBody }>('/vms/:id/start', {
    schema: {
      tags: lifecycle, summary: 'Start a VM', operationId: 'startVm',
      description: 'Starts QEMU. With `waitFor.console`, answers once that text (or /regex/) appears on the serial console; with `waitFor.until` (+ `mode`), once those wait conditions hold (as POST /vms/:id/wait, answered in `waited`); 504 TIMEOUT if they do not (the VM keeps running).',
      params: VmRefParams, body: StartBody, response: responses({ 200: StartResult }, [404, 409, 502, 504]),
    },
  }, async (req) => {
    const w = req.body.waitFor;
    if (w && 'until' in w) return s.wait.start(req.params.id, w);
    return s.vms.start(req.params.id, w ? { console: w.console, timeoutSeconds: w.timeoutSeconds ?? 60 } : undefined);
  });

  app.post<Ref & { Body: StopBody }>('/vms/:id/stop', {
    schema: {
      tags: lifecycle, summary: 'Stop a VM (ACPI)', operationId: 'stopVm',
      description: 'Presses the ACPI power button and waits for the guest to power off. On timeout: 504, or with `force` the power is cut.',
      params: VmRefParams, body: StopBody, response: responses({ 200: VmRef }, [404, 409, 502, 504]),
    },
  }, async (req) => s.vms.stop(req.params.id, req.body));

  const simple = (path: string, operationId: string, summary: string, description: string, fn: (id: string) => Promise<unknown>): void => {
    app.post<Ref & { Body: Static<typeof Empty> }>(`/vms/:id/${path}`, {
      schema: { tags: lifecycle, summary, description, operationId, params: VmRefParams, body: Empty, response: responses({ 200: VmRef }, [404, 409, 502]) },
    }, async (req) => fn(req.params.id));
  };
  simple('force-stop', 'forceStopVm', 'Cut power', 'Ends QEMU at once. Works from error and during a graceful stop.', (id) => s.vms.forceStop(id));
  simple('pause', 'pauseVm', 'Pause vCPUs', 'Freezes the guest (running → paused).', (id) => s.vms.pause(id));
  simple('resume', 'resumeVm', 'Resume vCPUs', 'Thaws a paused guest (paused → running).', (id) => s.vms.resume(id));

  app.post<Ref & { Body: RestartBody }>('/vms/:id/restart', {
    schema: {
      tags: lifecycle, summary: 'Restart a VM', operationId: 'restartVm',
      description: 'Default: ACPI power-off (forced after `timeoutSeconds`) then start. `hard`: immediate hardware reset.',
      params: VmRefParams, body: RestartBody, response: responses({ 200: VmRef }, [404, 409, 502, 504]),
    },
  }, async (req) => s.vms.restart(req.params.id, req.body));

  simple('suspend', 'suspendVm', 'Suspend to disk',
    'Saves RAM and device state into the VM folder and ends QEMU (state suspended); the next start resumes exactly there, in the run state it had. Survives daemon restarts. Force-stop discards the saved state.',
    (id) => s.vms.suspend(id));

  app.get<Ref>('/vms/:id/suspend-status', {
    schema: { tags: lifecycle, summary: 'Suspension status', operationId: 'suspendStatus', params: VmRefParams, response: responses({ 200: SuspendStatus }, [404]) },
  }, async (req) => s.vms.suspendStatus(req.params.id));

  app.get<Ref>('/vms/:id/runtime', {
    schema: { tags, summary: 'Runtime figures', operationId: 'vmRuntime', params: VmRefParams, response: responses({ 200: Runtime }, [404]) },
  }, async (req) => s.vms.runtime(req.params.id));

  app.get<Ref & { Querystring: Static<typeof ErrorsQuery> }>('/vms/:id/errors', {
    schema: {
      tags, summary: 'Recent errors', operationId: 'vmErrors', description: 'QEMU failures, failed operations and guest panics, newest first.',
      params: VmRefParams, querystring: ErrorsQuery, response: responses({ 200: VmErrors }, [404]),
    },
  }, async (req) => ({ errors: s.vms.errors(req.params.id, req.query.limit ?? 50) }));

  app.get<Ref>('/vms/:id/ssh', {
    schema: {
      tags, summary: 'How to SSH into a VM', operationId: 'vmSsh',
      description: 'The forwarded port to guest port 22, the cloud-init user and Grove\'s key and known_hosts files: what `grove ssh` runs OpenSSH with. '
        + 'The paths are on the daemon\'s host, and the forward listens on its 127.0.0.1 only, so this is for clients on that host. 409 when the VM has no forward to port 22.',
      params: VmRefParams, response: responses({ 200: SshAccess }, [404, 409]),
    },
  }, async (req) => s.cloudInit.sshAccess(s.vms.get(req.params.id)));
}
