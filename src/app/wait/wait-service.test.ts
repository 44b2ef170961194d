import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError } from '../../domain/errors.js';
import type { GroveEvent } from '../../domain/events.js';
import { matchesFilter, type EventFilter } from '../../domain/events.js';
import type { Vm, VmState } from '../../domain/vm.js';
import { WaitService, type WaitServiceDeps } from './wait-service.js';

/** Fakes for the parts a wait watches: one VM, an event feed, an agent that answers when told to. */
function world(state: VmState = 'running') {
  const vm = { id: 'id-1', name: 'w', state, network: { mode: 'user', portForwards: [] }, lastError: null } as unknown as Vm;
  const subs = new Set<{ f: EventFilter; fn: (e: GroveEvent) => void }>();
  let nextId = 1;
  let agentUp = false;
  const files = new Set<string>();
  const publish = (type: GroveEvent['type'], data: Record<string, unknown> = {}): void => {
    const e = { id: nextId++, type, timestamp: new Date().toISOString(), vmId: vm.id, vmName: vm.name, data } as GroveEvent;
    for (const s of [...subs]) if (matchesFilter(e, s.f)) s.fn(e);
  };
  const deps = {
    vms: { get: () => ({ ...vm }) },
    console: { end: async () => 0, isAttached: () => false },
    agents: {
      status: () => ({ connected: agentUp, version: '7.2.22', os: null }),
      use: async (_ref: string, _what: string, fn: (a: unknown) => Promise<unknown>) => fn({
        fileOpen: async (p: string) => { if (!files.has(p)) throw Object.assign(new Error('ENOENT'), { name: 'x' }); return 1; },
        fileClose: async () => undefined,
      }),
    },
    feed: { subscribe: (f: EventFilter, fn: (e: GroveEvent) => void) => { const s = { f, fn }; subs.add(s); return { close: () => subs.delete(s) }; } },
    greeting: { firstLine: async () => { throw new Error('no'); } },
  } as unknown as WaitServiceDeps;
  return {
    vm, files, subs, publish, wait: new WaitService(deps),
    setState(s: VmState, type: GroveEvent['type'], data: Record<string, unknown> = {}) { vm.state = s; publish(type, data); },
    agent(up: boolean) { agentUp = up; if (up) publish('agent.connected', { agent: { version: '7.2.22', os: 'busybox' } }); },
  };
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('state and event conditions are decided by the events of the VM', async () => {
  const w = world();
  const p = w.wait.wait('w', { until: [{ state: 'paused' }, { event: 'vm.resumed' }], mode: 'all', timeoutSeconds: 5 });
  await tick();
  w.setState('paused', 'vm.paused');
  await tick();
  w.setState('running', 'vm.resumed');
  const r = await p;
  assert.deepEqual(r.matched.map((m) => m.kind), ['state', 'event']);
  assert.match(r.matched[1]!.evidence, /^event #2 vm\.resumed at /);
  assert.equal(w.subs.size, 0, 'the subscription is closed');
});

test('any: the first condition met answers; the agent one on its connect event', async () => {
  const w = world();
  const p = w.wait.wait('w', { until: [{ state: 'paused' }, { agent: true }], timeoutSeconds: 5 });
  await tick();
  w.agent(true);
  const r = await p;
  assert.equal(r.matched.length, 1);
  assert.equal(r.matched[0]!.index, 1);
  assert.equal(r.matched[0]!.evidence, 'agent 7.2.22 connected (event #1), busybox');
});

test('a guest-side check waits for the agent, then holds once the file appears', async () => {
  const w = world();
  const p = w.wait.wait('w', { until: [{ file: '/ready' }], timeoutSeconds: 10 });
  await tick(20);
  w.agent(true);
  await tick(20);
  w.files.add('/ready');
  const r = await p;
  assert.equal(r.matched[0]!.evidence, '/ready exists');
});

test('the VM stopping ends a wait on the guest at once, naming the reason', async () => {
  const w = world();
  const p = w.wait.wait('w', { until: [{ file: '/never' }], timeoutSeconds: 60 });
  await tick();
  const t0 = Date.now();
  w.setState('stopped', 'vm.stopped', { reason: 'forced' });
  await assert.rejects(p, (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE' && e.message === "VM 'w' stopped: forced while waiting for file /never");
  assert.ok(Date.now() - t0 < 1000);
});

test('a state condition outlives the guest: stopped is something to wait for', async () => {
  const w = world();
  const p = w.wait.wait('w', { until: [{ agent: true }, { state: 'stopped' }], timeoutSeconds: 5 });
  await tick();
  w.setState('stopped', 'vm.stopped', { reason: 'guest-shutdown' });
  const r = await p;
  assert.equal(r.matched[0]!.kind, 'state');
});

test('timeout names each pending condition; a stopped VM refuses a guest condition at once', async () => {
  const w = world();
  await assert.rejects(w.wait.wait('w', { until: [{ state: 'paused' }], timeoutSeconds: 0.05 }),
    (e: unknown) => e instanceof DomainError && e.code === 'TIMEOUT' && /state paused/.test(e.message));
  const s = world('stopped');
  await assert.rejects(s.wait.wait('w', { until: [{ agent: true }], timeoutSeconds: 5 }),
    (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE');
});
