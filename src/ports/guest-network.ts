/** What a guest's forwarded TCP ports answer, as seen from the daemon's host. */
export interface TcpGreeting {
  /**
   * Connects to `host:port` and reads the server's first line (an SSH server's identification string);
   * rejects when nothing connects, the connection closes first, or nothing arrives within `timeoutMs`.
   */
  firstLine(host: string, port: number, timeoutMs: number): Promise<string>;
}
