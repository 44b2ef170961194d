/** Reads a growing log file (QEMU's) by byte offset. */
export interface LogFiles {
  /** Its size in bytes; 0 when it does not exist (yet). */
  size(file: string): Promise<number>;
  /** Up to `length` bytes from `from`; fewer at the end of the file. */
  read(file: string, from: number, length: number): Promise<Buffer>;
}
