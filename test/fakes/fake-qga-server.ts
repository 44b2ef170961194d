import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type FakeQgaReply =
  | { return: unknown }
  | { error: { class: string; desc: string } }
  /** Swallow the command, as an agent that died mid-command would. */
  | { noReply: true };

export interface FakeQgaCommand {
  execute: string;
  arguments?: Record<string, unknown>;
  id?: unknown;
}

export type FakeQgaHandler = (cmd: FakeQgaCommand) => FakeQgaReply | Promise<FakeQgaReply>;

/**
 * A scriptable guest agent behind a unix socket, behaving as QEMU and qemu-ga do together:
 * - QEMU serves the socket whether or not an agent runs. While the agent is `stopped`, bytes sent are
 *   kept (as the virtio-serial channel keeps them) and reach the agent when it starts again.
 * - The agent's parser: a 0xFF byte resets it and is answered with a parse error (qemu-ga 7.2 does);
 *   `guest-sync-delimited` is answered with a 0xFF sentinel before its reply; ids are echoed.
 */
export class FakeQgaServer extends EventEmitter<{ command: [FakeQgaCommand] }> {
  readonly socketPath: string;
  readonly received: FakeQgaCommand[] = [];
  readonly connections = new Set<net.Socket>();
  /** Most commands that were ever waiting for a reply at once (the client must keep it at 1). */
  maxInFlight = 0;
  #inFlight = 0;
  #running = true;
  #held: Buffer[] = [];
  #parse = '';
  #server: net.Server | undefined;
  #handlers = new Map<string, FakeQgaHandler>();
  #dir: string;

  private constructor(dir: string) {
    super();
    this.#dir = dir;
    this.socketPath = join(dir, 'qga.sock');
    this.handle('guest-ping', { return: {} });
  }

  static async start(): Promise<FakeQgaServer> {
    const s = new FakeQgaServer(await mkdtemp(join(tmpdir(), 'fake-qga-')));
    await s.listen();
    return s;
  }

  async listen(): Promise<void> {
    const server = net.createServer((conn) => this.#accept(conn));
    this.#server = server;
    server.listen(this.socketPath);
    await once(server, 'listening');
  }

  handle(command: string, handler: FakeQgaHandler | FakeQgaReply): this {
    this.#handlers.set(command, typeof handler === 'function' ? handler : () => handler);
    return this;
  }

  /** The agent process ends: input stays in the channel until start(). */
  stopAgent(): void {
    this.#running = false;
    this.#parse = '';
  }

  /** The agent starts (again) and reads whatever waited in the channel. */
  startAgent(): void {
    this.#running = true;
    const held = this.#held;
    this.#held = [];
    for (const b of held) this.#consume(b);
  }

  /** Bytes from the agent's side, verbatim. */
  sendBytes(bytes: Buffer | string): void {
    for (const c of this.connections) if (!c.destroyed) c.write(bytes);
  }

  /** QEMU went away: every connection is cut (and the socket stays listening, as a restarted QEMU's would). */
  dropConnections(): void {
    for (const c of this.connections) c.destroy();
  }

  async nextCommand(name?: string): Promise<FakeQgaCommand> {
    for (;;) {
      const [cmd] = await once(this, 'command');
      if (!name || (cmd as FakeQgaCommand).execute === name) return cmd as FakeQgaCommand;
    }
  }

  async close(): Promise<void> {
    this.dropConnections();
    if (this.#server?.listening) {
      const closed = once(this.#server, 'close');
      this.#server.close();
      await closed;
    }
    await rm(this.#dir, { recursive: true, force: true });
  }

  #accept(conn: net.Socket): void {
    this.connections.add(conn);
    conn.on('error', () => undefined);
    conn.on('close', () => this.connections.delete(conn));
    conn.on('data', (b: Buffer) => {
      if (this.#running) this.#consume(b);
      else this.#held.push(b);
    });
  }

  #consume(bytes: Buffer): void {
    for (const byte of bytes) {
      if (!this.#running) {
        this.#held.push(Buffer.from([byte]));
        continue;
      }
      if (byte === 0xff) {
        this.#parse = '';
        this.#write({ error: { class: 'GenericError', desc: "JSON parse error, stray '\\xff'" } });
        continue;
      }
      if (byte !== 0x0a) { this.#parse += String.fromCharCode(byte); continue; }
      const line = this.#parse.trim();
      this.#parse = '';
      if (line) this.#line(line).catch(() => { /* a line the fake cannot answer gets no reply, like a wedged agent */ });
    }
  }

  async #line(line: string): Promise<void> {
    let msg: { execute?: unknown; arguments?: Record<string, unknown>; id?: unknown };
    try {
      msg = JSON.parse(line);
    } catch {
      this.#write({ error: { class: 'GenericError', desc: 'JSON parse error' } });
      return;
    }
    const cmd: FakeQgaCommand = { execute: String(msg.execute) };
    if (msg.arguments !== undefined) cmd.arguments = msg.arguments;
    if (msg.id !== undefined) cmd.id = msg.id;
    this.received.push(cmd);
    this.emit('command', cmd);
    if (cmd.execute === 'guest-sync-delimited') {
      this.sendBytes(Buffer.from([0xff]));
      this.#write({ return: cmd.arguments?.id }, cmd.id);
      return;
    }
    const handler = this.#handlers.get(cmd.execute);
    if (!handler) {
      this.#write({ error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` } }, cmd.id);
      return;
    }
    this.#inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    try {
      const reply = await handler(cmd);
      if (!('noReply' in reply) && this.#running) this.#write(reply, cmd.id);
    } finally {
      this.#inFlight--;
    }
  }

  #write(reply: Record<string, unknown>, id?: unknown): void {
    this.sendBytes(`${JSON.stringify(id === undefined ? reply : { ...reply, id })}\n`);
  }
}
