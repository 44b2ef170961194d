import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpError, QmpTimeoutError } from './errors.js';

// QEMU creates the socket some time after exec, and a stale socket file from a
// previous QEMU refuses connections until the new one binds over it.
const RETRYABLE_CONNECT_ERRORS = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/**
 * Connects to QEMU's QMP unix socket, retrying while it does not exist yet or
 * refuses connections, until `deadline` (epoch ms).
 */
export async function connectWithRetry(path: string, deadline: number, timeoutMs: number): Promise<net.Socket> {
  let delayMs = 10;
  for (;;) {
    let lastError: NodeJS.ErrnoException;
    try {
      return await connectOnce(path);
    } catch (err) {
      lastError = err as NodeJS.ErrnoException;
      if (!RETRYABLE_CONNECT_ERRORS.has(lastError.code ?? '')) {
        throw new QmpError(`cannot connect to QMP socket ${path}: ${lastError.message}`, { cause: err });
      }
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new QmpTimeoutError('connect', timeoutMs, `${path}: ${lastError.code}`);
    }
    await sleep(Math.min(delayMs, remaining));
    delayMs = Math.min(delayMs * 2, 200);
  }
}

function connectOnce(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const onError = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      // Keeps an error raised before QmpClient attaches its handlers from being
      // thrown; the client sees it as socket.destroyed.
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}
