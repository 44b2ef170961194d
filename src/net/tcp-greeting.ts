import { createConnection } from 'node:net';
import type { TcpGreeting } from '../ports/guest-network.js';

/** Far longer than any identification line (RFC 4253 allows 255 bytes). */
const MAX_LINE = 1024;

/** The first line a TCP server sends, read over a fresh connection that is closed right after. */
export class NetTcpGreeting implements TcpGreeting {
  firstLine(host: string, port: number, timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let buf = '';
      let done = false;
      const sock = createConnection({ host, port });
      const finish = (err: Error | null, line?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err); else resolve(line!);
      };
      // QEMU's user-mode forward accepts at once even while nothing listens in the guest, then closes:
      // only a line from the server proves it is there.
      const timer = setTimeout(() => finish(new Error(`no greeting from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
      sock.setEncoding('latin1');
      sock.on('data', (chunk: string) => {
        buf += chunk;
        const nl = buf.indexOf('\n');
        if (nl !== -1) finish(null, buf.slice(0, nl).replace(/\r$/, ''));
        else if (buf.length > MAX_LINE) finish(new Error(`${host}:${port} sent ${buf.length} bytes without a line end`));
      });
      sock.on('error', (e) => finish(e));
      sock.on('close', () => finish(new Error(`${host}:${port} closed the connection before greeting`)));
    });
  }
}
