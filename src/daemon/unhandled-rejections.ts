import type { Logger } from '../ports/logger.js';

/**
 * Node ends the process on a promise rejection nobody handles. In the daemon such a promise is a side task
 * nobody waits on (a cleanup, a late write): ending the daemon for it would cut every client and every
 * operation in flight, while the VMs run on regardless. So it is logged, as the bug it is, and the daemon
 * goes on. Thrown exceptions still end it: the state they leave behind is unknown.
 */
export function logUnhandledRejections(log: Logger): void {
  process.on('unhandledRejection', (reason: unknown) => {
    log.error({ err: reason }, 'unhandled promise rejection (a bug in Grove); the daemon keeps running');
  });
}
