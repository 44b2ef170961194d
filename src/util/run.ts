import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Written to the program's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
}

/** Runs a program with an argv array (never a shell) and collects its output; killed after `timeoutMs`. */
export function run(cmd: string, args: string[], timeoutMs: number, opts: RunOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = opts.input === undefined
      ? spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    if (child.stdin) {
      // A program that exits without reading all its input makes the write fail with EPIPE; its exit is
      // what the caller learns from, so the write error is not.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}
