import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { DomainError } from '../../domain/errors.js';
import type { GroveEvent, NewEvent } from '../../domain/events.js';
import type { Vm, VmState } from '../../domain/vm.js';
import { GuestAgentUnavailableError, type GuestAgent } from '../../ports/guest-agent.js';
import { DataLayout } from '../layout.js';
import type { VmService } from '../vm-service.js';
import { AgentService, primaryAddress } from './agent-service.js';

function vm(state: VmState): Vm {
  return {
    id: '0b5d7c43-7a55-4a0f-9d36-6f1f0d1c2b3a', name: 'web', state, cpu: 1, memoryMB: 256, diskGB: 1, distro: null, boot: {},
    network: { mode: 'user', portForwards: [] }, order: 0, createdAt: '', updatedAt: '', startedAt: null, accelerator: null, lastError: null, cloudInit: null, autostart: false,
  };
}

function setup(initial: VmState, freeze: () => Promise<number> = async () => 1) {
  let list: Vm[] = [vm(initial)];
  let answering = false;
  let closed = 0;
  const calls: string[] = [];
  const published: NewEvent[] = [];
  let deliver: ((e: GroveEvent) => void) | null = null;
  const agent = {
    async ping() { if (!answering) throw new GuestAgentUnavailableError('no answer'); },
    async info() { return { version: '7.2.22' }; },
    async osInfo() { return { prettyName: 'Debian GNU/Linux 12 (bookworm)', name: null, version: null } as never; },
    async close() { closed++; },
    async freezeFilesystems() { calls.push('freeze'); return freeze(); },
    async thawFilesystems() { calls.push('thaw'); return 1; },
  } as unknown as GuestAgent;
  const vms = {
    list: () => list,
    get: (ref: string) => { const v = list.find((x) => x.id === ref || x.name === ref); if (!v) throw new DomainError('VM_NOT_FOUND', ref); return v; },
  } as unknown as VmService;
  const service = new AgentService({
    vms, layout: new DataLayout('/nonexistent'), connector: { open: () => agent },
    events: { publish: (e) => { published.push(e); return { ...e, id: published.length, timestamp: '' }; } },
    feed: { subscribe: (_f, d) => { deliver = d; return { close: () => { deliver = null; } }; } },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    options: { pingIntervalMs: 20, retryMs: 10 },
  });
  return {
    service, published, calls,
    setAnswering: (v: boolean) => { answering = v; },
    setState: (s: VmState, type: GroveEvent['type']) => { list = [{ ...list[0]!, state: s }]; deliver?.({ id: 0, type, timestamp: '', vmId: list[0]!.id, data: {} }); },
    closed: () => closed,
  };
}

const until = async (what: string, pred: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !pred(); i++) await delay(10);
  assert.ok(pred(), what);
};

test('the watcher reports the agent coming, going, and the VM stopping', async () => {
  const t = setup('running');
  t.service.start();
  assert.deepEqual(t.service.details('web').agent, { connected: false, version: null, os: null });
  await delay(50);
  assert.equal(t.published.length, 0, 'no event while no agent answers');
  const before = t.service.list();
  assert.equal(t.service.list(), before, 'the same list until something changes');
  const detailed = t.service.details('web');
  assert.equal(t.service.details('web'), detailed, 'the same details object until something changes (faces keep its JSON)');
  assert.equal(t.service.details(detailed.id), detailed, 'by id as by name');
  assert.equal(before[0], detailed, 'the list\'s own entry');

  t.setAnswering(true);
  await until('connected', () => t.published.length === 1);
  assert.equal(t.published[0]!.type, 'agent.connected');
  assert.deepEqual(t.published[0]!.data, { agent: { connected: true, version: '7.2.22', os: 'Debian GNU/Linux 12 (bookworm)' } });
  assert.deepEqual(t.service.details('web').agent, { connected: true, version: '7.2.22', os: 'Debian GNU/Linux 12 (bookworm)' });
  assert.notEqual(t.service.details('web'), detailed, 'a new object once the agent changed');
  assert.notEqual(t.service.list(), before);
  assert.equal(t.service.list()[0]!.agent!.connected, true);

  t.setAnswering(false);
  await until('disconnected', () => t.published.length === 2);
  assert.equal(t.published[1]!.type, 'agent.disconnected');
  assert.equal(t.published[1]!.data.reason, 'no answer');

  t.setAnswering(true);
  await until('connected again', () => t.published.length === 3);
  t.setState('stopped', 'vm.stopped');
  await until('stopped', () => t.published.length === 4);
  assert.deepEqual(t.published[3]!.data, { agent: { connected: false, version: '7.2.22', os: 'Debian GNU/Linux 12 (bookworm)' }, reason: 'vm stopped' });
  assert.equal(t.closed(), 1);
  assert.equal(t.service.details('web').agent, null);
  assert.equal(t.service.details('web').state, 'stopped', 'a new object once the VM changed');
  await t.service.close();
});

test('use() needs a running VM: INVALID_STATE naming the state', async () => {
  const t = setup('paused');
  await assert.rejects(t.service.use('web', 'x', async () => 1), (e: unknown) =>
    e instanceof DomainError && e.code === 'INVALID_STATE' && e.extra.state === 'paused' && /paused/.test(e.message));
  await t.service.close();
});

test('no answer from a running VM\'s agent is GUEST_AGENT_UNAVAILABLE', async () => {
  const t = setup('running');
  await assert.rejects(t.service.use('web', 'x', async (a) => a.ping()), (e: unknown) => e instanceof DomainError && e.code === 'GUEST_AGENT_UNAVAILABLE');
  await t.service.close();
});

test('the primary address is the first global IPv4, else a global IPv6', () => {
  const lo = { name: 'lo', mac: null, addresses: [{ family: 'ipv4' as const, address: '127.0.0.1', prefix: 8 }] };
  const eth = (addrs: [string, 'ipv4' | 'ipv6'][]) => ({ name: 'eth0', mac: null, addresses: addrs.map(([address, family]) => ({ family, address, prefix: 64 })) });
  assert.equal(primaryAddress([lo, eth([['fe80::1', 'ipv6'], ['10.0.2.15', 'ipv4']])]), '10.0.2.15');
  assert.equal(primaryAddress([lo, eth([['fe80::1', 'ipv6'], ['fec0::5054:ff:fe12:3456', 'ipv6']])]), 'fec0::5054:ff:fe12:3456');
  assert.equal(primaryAddress([lo]), null);
});

test('quiesced: frozen around the work when the agent answers, thawed even when the work or the freeze fails', async () => {
  const t = setup('running');
  t.service.start();
  // No answering agent: the work runs as it is.
  assert.deepEqual(await t.service.quiesced(vm('running').id, async () => 7), { result: 7, frozen: false });
  assert.deepEqual(t.calls, []);
  t.setAnswering(true);
  await until('connected', () => t.service.details('web').agent?.connected === true);
  const r = await t.service.quiesced(vm('running').id, async () => { t.calls.push('work'); return 8; });
  assert.deepEqual(r, { result: 8, frozen: true });
  assert.deepEqual(t.calls, ['freeze', 'work', 'thaw']);
  t.calls.length = 0;
  await assert.rejects(t.service.quiesced(vm('running').id, async () => { throw new Error('copy failed'); }), /copy failed/);
  assert.deepEqual(t.calls, ['freeze', 'thaw']);
  await t.service.close();

  const f = setup('running', async () => { throw new GuestAgentUnavailableError('no answer'); });
  f.service.start();
  f.setAnswering(true);
  await until('connected', () => f.service.details('web').agent?.connected === true);
  assert.deepEqual(await f.service.quiesced(vm('running').id, async () => 9), { result: 9, frozen: false });
  assert.deepEqual(f.calls, ['freeze', 'thaw'], 'a failed freeze may have frozen part: thawed all the same');
  await f.service.close();
});
