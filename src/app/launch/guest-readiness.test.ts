import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, test } from 'node:test';
import { DomainError } from '../../domain/errors.js';
import type { Vm } from '../../domain/vm.js';
import { NetTcpGreeting } from '../../net/tcp-greeting.js';
import { GuestReadiness, type ProbeOutcome, type ReadinessProbe } from './guest-readiness.js';
import { SshReadiness } from './ssh-readiness.js';

const servers: Server[] = [];
after(() => { for (const s of servers) s.close(); });

function vmWith(port: number | null, state: Vm['state'] = 'running'): Vm {
  return {
    id: '00000000-0000-4000-8000-000000000001', name: 'web', state, cpu: 1, memoryMB: 512, diskGB: 8, distro: 'debian-12', boot: {},
    network: { mode: 'user', portForwards: port === null ? [] : [{ host: port, guest: 22, protocol: 'tcp' }] }, order: 0,
    createdAt: '', updatedAt: '', startedAt: null, accelerator: null, lastError: state === 'error' ? 'QEMU exited: boom' : null, cloudInit: null, autostart: false,
  };
}

/** A loopback TCP server answering each connection with `onConnect`. */
async function server(onConnect: (sock: import('node:net').Socket) => void): Promise<number> {
  const s = createServer(onConnect);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

test('ssh: an SSH identification line through the forward is ready; QEMU-style accept-then-close and other greetings are not', async () => {
  const ssh = new SshReadiness(new NetTcpGreeting());
  const good = await server((c) => c.end('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n'));
  assert.deepEqual(await ssh.attempt(vmWith(good), 2000), { ready: true, detail: 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3' });
  const closes = await server((c) => c.destroy());
  const r1 = await ssh.attempt(vmWith(closes), 2000);
  assert.equal(r1.ready, false);
  assert.match((r1 as { reason: string }).reason, /closed the connection before greeting/);
  const http = await server((c) => c.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  assert.deepEqual(await ssh.attempt(vmWith(http), 2000), { ready: false, reason: 'not an SSH greeting: "HTTP/1.1 400 Bad Request"' });
  const silent = await server(() => undefined);
  const r2 = await ssh.attempt(vmWith(silent), 200);
  assert.match((r2 as { reason: string }).reason, /no greeting from 127\.0\.0\.1:\d+ within 200 ms/);
  await assert.rejects(ssh.attempt(vmWith(null), 200), (e: unknown) => e instanceof DomainError && e.code === 'CONFLICT');
});

/** A probe answering from a script of outcomes, counting attempts. */
function scripted(outcomes: ProbeOutcome[]): ReadinessProbe & { calls: number } {
  const p = {
    calls: 0,
    async attempt(): Promise<ProbeOutcome> { return outcomes[Math.min(p.calls++, outcomes.length - 1)]!; },
  };
  return p;
}

test('readiness retries until the probe passes', async () => {
  const probe = scripted([{ ready: false, reason: 'refused' }, { ready: false, reason: 'refused' }, { ready: true, detail: 'SSH-2.0-x' }]);
  const r = await new GuestReadiness({ probes: { ssh: probe }, vms: { get: () => vmWith(1) } }).wait('web', 'ssh', 10_000);
  assert.equal(r.attempts, 3);
  assert.equal(r.detail, 'SSH-2.0-x');
  assert.equal(r.check, 'ssh');
});

test('readiness gives up at the timeout with the last reason, and at once when the VM stops running', async () => {
  const never = scripted([{ ready: false, reason: 'connection refused' }]);
  await assert.rejects(new GuestReadiness({ probes: { ssh: never }, vms: { get: () => vmWith(1) } }).wait('web', 'ssh', 300),
    (e: unknown) => e instanceof DomainError && e.code === 'TIMEOUT' && /VM 'web' is running but ssh did not answer within 0.3 s \(last: connection refused\); it keeps running/.test(e.message));
  let state: Vm['state'] = 'running';
  const crashing = scripted([{ ready: false, reason: 'refused' }]);
  const waiting = new GuestReadiness({ probes: { ssh: crashing }, vms: { get: () => vmWith(1, state) } }).wait('web', 'ssh', 60_000);
  setTimeout(() => { state = 'error'; }, 50);
  await assert.rejects(waiting, (e: unknown) => e instanceof DomainError && e.code === 'INVALID_STATE' && e.message === "VM 'web' is error while waiting for ssh: QEMU exited: boom");
});
