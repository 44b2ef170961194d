/**
 * The recent console output of one VM in memory, addressed by console-log offsets. Bounded: older bytes
 * are dropped here and served from the log file instead.
 */
export class ConsoleBuffer {
  private chunks: { offset: number; data: Buffer }[] = [];
  private bytes = 0;

  constructor(private readonly capacity: number, private endOffset = 0) {}

  get start(): number {
    return this.chunks[0]?.offset ?? this.endOffset;
  }

  get end(): number {
    return this.endOffset;
  }

  append(data: Buffer, offset: number): void {
    if (offset !== this.endOffset) {
      // A gap or overlap (log rewritten underneath us): restart from the new position.
      this.chunks = [];
      this.bytes = 0;
    }
    this.chunks.push({ offset, data });
    this.bytes += data.length;
    this.endOffset = offset + data.length;
    while (this.bytes > this.capacity && this.chunks.length > 1) {
      this.bytes -= this.chunks.shift()!.data.length;
    }
  }

  /** Bytes in [from, min(to, end)), or null when `from` is older than what is held. */
  read(from: number, to: number): Buffer | null {
    if (from < this.start) return null;
    const parts: Buffer[] = [];
    for (const c of this.chunks) {
      const cEnd = c.offset + c.data.length;
      if (cEnd <= from || c.offset >= to) continue;
      parts.push(c.data.subarray(Math.max(0, from - c.offset), Math.min(c.data.length, to - c.offset)));
    }
    return Buffer.concat(parts);
  }
}
