/** Host TCP ports for port forwards. */
export interface HostPorts {
  /** A port nothing listens on at 127.0.0.1 now, other than those in `exclude`. */
  pickFree(exclude: ReadonlySet<number>): Promise<number>;
}
