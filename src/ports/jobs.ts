import type { Job } from '../domain/job.js';

export interface JobRepo {
  /** Newest first. */
  list(vmId: string): Job[];
  running(): Job[];
  get(id: string): Job | undefined;
  insert(job: Job): void;
  update(job: Job): void;
}

/** One output file of a job, appended to as output arrives. */
export interface JobOutputWriter {
  append(data: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** The job output files in VM folders: `vms/<id>/jobs/<jid>/{stdout,stderr}`. */
export interface JobOutputFiles {
  makeDir(dir: string): Promise<void>;
  /** Opens a file for appending (made if missing). */
  openWriter(path: string): Promise<JobOutputWriter>;
  /** Its size in bytes; 0 when missing. */
  size(path: string): Promise<number>;
  /** Up to `limit` bytes from `offset` (fewer at the end of the file). */
  read(path: string, offset: number, limit: number): Promise<Buffer>;
}
