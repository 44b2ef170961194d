import { errorMessage } from '../util/errors.js';
import WebSocket from 'ws';
import type { GroveClient } from './client.js';
import { ApiError, UnreachableError, apiErrorFrom, codeForStatus, networkReason } from './errors.js';

export interface ConsoleSocket {
  /** Raw bytes typed into the serial console. */
  write(data: Buffer): void;
  /** Closes our side; `closed` resolves once the socket is gone. */
  close(): void;
  /** Why the stream ended: we closed it, the VM stopped, or the daemon refused/cut it. */
  readonly closed: Promise<{ code: number; reason: string; error?: ApiError }>;
}

/**
 * Opens the interactive console WebSocket of a VM; `onData` gets the raw serial output (the recent buffer
 * first). Rejects with ApiError when the daemon refuses the upgrade, UnreachableError when there is no daemon.
 */
export function openConsole(client: GroveClient, ref: string, onData: (chunk: Buffer) => void): Promise<ConsoleSocket> {
  const ws = new WebSocket(client.consoleSocketUrl(ref), { headers: client.authHeaders(), perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    let opened = false;
    const closed = new Promise<{ code: number; reason: string; error?: ApiError }>((done) => {
      ws.on('close', (code, reasonBuf) => {
        const reason = reasonBuf.toString('utf8');
        // The daemon closes with 4000 + HTTP status when it refuses after the upgrade (e.g. 4404, 4409).
        if (code >= 4400 && code < 4600) {
          const status = code - 4000;
          const err = new ApiError(status, status === 404 ? 'VM_NOT_FOUND' : status === 409 ? 'INVALID_STATE' : codeForStatus(status), reason || `console closed (${code})`);
          if (!opened) reject(err);
          done({ code, reason, error: err });
          return;
        }
        if (!opened) reject(new ApiError(409, 'CONSOLE_CLOSED', reason || `console closed (${code})`));
        done({ code, reason });
      });
    });
    ws.on('message', (data: WebSocket.RawData) => {
      onData(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => reject(apiErrorFrom(res.statusCode ?? 0, res.statusMessage ?? '', body)));
      res.on('error', () => reject(apiErrorFrom(res.statusCode ?? 0, res.statusMessage ?? '', body)));
    });
    ws.on('error', (e) => {
      if (!opened) reject(new UnreachableError(client.url, networkReason(e) || errorMessage(e)));
    });
    ws.once('open', () => {
      // A refusal right after the upgrade arrives as a close frame; give it a moment before saying "attached".
      setTimeout(() => {
        if (ws.readyState !== WebSocket.OPEN) return;
        opened = true;
        resolve({
          write: (data) => { if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary: true }); },
          close: () => ws.close(1000, 'detached'),
          closed,
        });
      }, 50);
    });
  });
}
