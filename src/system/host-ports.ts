import { createServer } from 'node:net';
import type { HostPorts } from '../ports/host-ports.js';

const ATTEMPTS = 20;

/**
 * The kernel picks: a listener on port 0 gets a port nothing uses now, spread over the ephemeral range,
 * so two daemons (or two users) on one host rarely meet on one.
 */
export class LoopbackPorts implements HostPorts {
  async pickFree(exclude: ReadonlySet<number>): Promise<number> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = await bindAny();
      if (!exclude.has(port)) return port;
    }
    throw new Error(`no free port on 127.0.0.1 outside the ${exclude.size} in use after ${ATTEMPTS} tries`);
  }
}

function bindAny(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
