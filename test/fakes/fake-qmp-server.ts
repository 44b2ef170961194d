import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a handler tells the fake to do with a command. */
export type FakeReply =
  | { return: unknown }
  | { error: { class: string; desc: string } }
  /** Swallow the command, as a wedged QEMU would. */
  | { noReply: true };

export interface FakeCommand {
  execute: string;
  arguments?: Record<string, unknown>;
  id?: unknown;
  /** Connection the command arrived on, for replying by hand. */
  conn: net.Socket;
}

/** Return a promise to delay the reply; replies may then go out in any order. */
export type FakeHandler = (cmd: FakeCommand) => FakeReply | Promise<FakeReply>;

export interface FakeQmpServerOptions {
  /** Object: sent as JSON. String: sent verbatim (plus "\r\n"). null: never greet. */
  greeting?: Record<string, unknown> | string | null;
  /** Defaults to <fresh temp dir>/qmp.sock. */
  socketPath?: string;
}

export const DEFAULT_GREETING = {
  QMP: { version: { qemu: { micro: 3, minor: 2, major: 7 }, package: ' fake-1 ' }, capabilities: ['oob'] },
};

/**
 * A scriptable QMP peer on a unix socket. Mirrors QEMU's behaviour that tests
 * rely on: greeting on accept, CommandNotFound before qmp_capabilities, ids
 * echoed verbatim, replies as "\r\n"-terminated JSON.
 */
export class FakeQmpServer extends EventEmitter<{
  connection: [net.Socket];
  disconnect: [net.Socket];
  command: [FakeCommand];
}> {
  readonly socketPath: string;
  readonly received: FakeCommand[] = [];
  readonly connections = new Set<net.Socket>();
  #server: net.Server | undefined;
  #handlers = new Map<string, FakeHandler>();
  #greeting: Record<string, unknown> | string | null;
  #ownDir: string | undefined;

  private constructor(socketPath: string, greeting: Record<string, unknown> | string | null, ownDir?: string) {
    super();
    this.socketPath = socketPath;
    this.#greeting = greeting;
    this.#ownDir = ownDir;
  }

  /** Creates the fake without listening yet (to test connect retries). */
  static async create(opts: FakeQmpServerOptions = {}): Promise<FakeQmpServer> {
    let dir: string | undefined;
    let path = opts.socketPath;
    if (!path) {
      dir = await mkdtemp(join(tmpdir(), 'fake-qmp-'));
      path = join(dir, 'qmp.sock');
    }
    return new FakeQmpServer(path, opts.greeting === undefined ? DEFAULT_GREETING : opts.greeting, dir);
  }

  static async start(opts: FakeQmpServerOptions = {}): Promise<FakeQmpServer> {
    const s = await FakeQmpServer.create(opts);
    await s.listen();
    return s;
  }

  async listen(): Promise<void> {
    const server = net.createServer((conn) => this.#accept(conn));
    this.#server = server;
    server.listen(this.socketPath);
    await once(server, 'listening');
  }

  /** Registers a handler (or a fixed reply) for a command name. */
  handle(command: string, handler: FakeHandler | FakeReply): this {
    this.#handlers.set(command, typeof handler === 'function' ? handler : () => handler);
    return this;
  }

  sendEvent(event: string, data?: Record<string, unknown>, timestamp = { seconds: 1700000000, microseconds: 123 }): void {
    const msg: Record<string, unknown> = { timestamp, event };
    if (data !== undefined) msg.data = data;
    this.sendRaw(JSON.stringify(msg));
  }

  /** Writes `text` + "\r\n" to every connection. */
  sendRaw(text: string): void {
    this.sendBytes(Buffer.from(`${text}\r\n`));
  }

  /** Writes bytes verbatim (no terminator) to every connection. */
  sendBytes(bytes: Buffer): void {
    for (const c of this.connections) if (!c.destroyed) c.write(bytes);
  }

  reply(cmd: FakeCommand, reply: FakeReply): void {
    if ('noReply' in reply || cmd.conn.destroyed) return;
    const msg: Record<string, unknown> = { ...reply };
    if (cmd.id !== undefined) msg.id = cmd.id;
    cmd.conn.write(`${JSON.stringify(msg)}\r\n`);
  }

  /**
   * Resolves with the next command named `name` (or any command) to arrive.
   * Commands that arrived before the call are not considered, so call it
   * before making the client send.
   */
  async nextCommand(name?: string): Promise<FakeCommand> {
    for (;;) {
      const [cmd] = await once(this, 'command');
      if (!name || (cmd as FakeCommand).execute === name) return cmd as FakeCommand;
    }
  }

  /** Abruptly closes every client connection, as a dying QEMU would. */
  dropConnections(): void {
    for (const c of this.connections) c.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    if (this.#server?.listening) {
      const closed = once(this.#server, 'close');
      this.#server.close();
      await closed;
    }
    if (this.#ownDir) await rm(this.#ownDir, { recursive: true, force: true });
  }

  #accept(conn: net.Socket): void {
    this.connections.add(conn);
    conn.on('error', () => {}); // the client under test may vanish mid-write
    conn.on('close', () => {
      this.connections.delete(conn);
      this.emit('disconnect', conn);
    });
    let negotiated = false;
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (text: string) => {
      buf += text;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: { execute?: unknown; arguments?: Record<string, unknown>; id?: unknown };
        try {
          msg = JSON.parse(line);
        } catch {
          conn.write(`${JSON.stringify({ error: { class: 'GenericError', desc: 'JSON parse error' } })}\r\n`);
          continue;
        }
        const cmd: FakeCommand = { execute: String(msg.execute), conn };
        if (msg.arguments !== undefined) cmd.arguments = msg.arguments;
        if (msg.id !== undefined) cmd.id = msg.id;
        this.received.push(cmd);
        this.emit('command', cmd);
        if (cmd.execute === 'qmp_capabilities' && !this.#handlers.has('qmp_capabilities')) {
          negotiated = true;
          this.reply(cmd, { return: {} });
        } else if (!negotiated && cmd.execute !== 'qmp_capabilities') {
          this.reply(cmd, { error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
        } else {
          if (cmd.execute === 'qmp_capabilities') negotiated = true;
          // A reply that cannot be sent (a handler's value JSON cannot encode) ends the connection, as QEMU's end would.
          this.#run(cmd).catch(() => conn.destroy());
        }
      }
    });
    if (this.#greeting !== null) {
      conn.write(`${typeof this.#greeting === 'string' ? this.#greeting : JSON.stringify(this.#greeting)}\r\n`);
    }
    this.emit('connection', conn);
  }

  async #run(cmd: FakeCommand): Promise<void> {
    const handler = this.#handlers.get(cmd.execute);
    if (!handler) {
      this.reply(cmd, { error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` } });
      return;
    }
    try {
      this.reply(cmd, await handler(cmd));
    } catch (err) {
      this.reply(cmd, { error: { class: 'GenericError', desc: `fake handler threw: ${(err as Error).message}` } });
    }
  }
}
