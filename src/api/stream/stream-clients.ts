export type StreamKind = 'sse' | 'websocket';

/** How many event-stream consumers are attached now, by transport (for /metrics). */
export class StreamClients {
  private readonly open: Record<StreamKind, number> = { sse: 0, websocket: 0 };

  /** Counts one consumer in; the returned function counts it out (once, however often it is called). */
  attach(kind: StreamKind): () => void {
    this.open[kind]++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.open[kind]--;
    };
  }

  counts(): Record<StreamKind, number> { return { ...this.open }; }
}
