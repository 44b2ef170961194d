import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DomainError } from '../../domain/errors.js';
import type { PointerEvent, ScreenSize } from '../../domain/screen-input.js';
import type { InputEvent } from './qmp/commands.js';
import { errorMessage } from '../../util/errors.js';

const CONNECT_TIMEOUT_MS = 5000;
const PROBE_TIMEOUT_MS = 5000;

export function toQmpInput(e: PointerEvent): InputEvent {
  switch (e.kind) {
    case 'button': return { type: 'btn', data: { down: e.down, button: e.button } };
    case 'abs': return { type: 'abs', data: { axis: e.axis, value: e.value } };
  }
}

/** A connection to QEMU's VNC unix socket, once it is open. */
export function connectVnc(socketPath: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const timer = setTimeout(() => { sock.destroy(); reject(new DomainError('TIMEOUT', 'the VM\'s VNC server did not accept the connection in time')); }, CONNECT_TIMEOUT_MS);
    sock.once('connect', () => { clearTimeout(timer); sock.removeAllListeners('error'); resolve(sock); });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? new DomainError('INVALID_STATE', 'this VM\'s QEMU has no VNC server (it was started by a Grove without one): restart the VM to get its screen', { state: 'running' })
        : new DomainError('QEMU_FAILED', `cannot reach the VM's VNC server: ${e.message}`));
    });
  });
}

/**
 * The framebuffer size from an RFB handshake (version, security None, ServerInit), as a shared client so
 * other viewers stay connected. QEMU has no QMP query for the display size; this costs no screendump.
 */
export async function vncDisplaySize(socketPath: string): Promise<ScreenSize> {
  const sock = (await connectVnc(socketPath)) as Socket;
  const reader = new ByteReader(sock);
  const timer = setTimeout(() => sock.destroy(new Error('the VNC handshake timed out')), PROBE_TIMEOUT_MS);
  try {
    const version = (await reader.read(12)).toString('latin1');
    if (!/^RFB \d{3}\.\d{3}\n$/.test(version)) throw new Error(`not an RFB server (greeting ${JSON.stringify(version)})`);
    sock.write('RFB 003.008\n');
    const count = (await reader.read(1))[0]!;
    if (count === 0) throw new Error('the VNC server refused the connection');
    const types = await reader.read(count);
    if (!types.includes(1)) throw new Error(`the VNC server offers no security type None (offers ${[...types].join(', ')})`);
    sock.write(Buffer.from([1]));
    if ((await reader.read(4)).readUInt32BE(0) !== 0) throw new Error('the VNC server refused security type None');
    sock.write(Buffer.from([1])); // ClientInit: shared
    const init = await reader.read(24);
    return { width: init.readUInt16BE(0), height: init.readUInt16BE(2) };
  } catch (e) {
    throw e instanceof DomainError ? e : new DomainError('QEMU_FAILED', `cannot read the display size from the VM's VNC server: ${errorMessage(e)}`);
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}

/** Reads exact byte counts from a socket. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(sock: Socket) {
    sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake?.(); });
    sock.on('close', () => { this.failure ??= new Error('the VNC server closed the connection'); this.wake?.(); });
    sock.on('error', (e) => { this.failure = e; this.wake?.(); });
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}
