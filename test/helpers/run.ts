import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult { code: number | null; stdout: string; stderr: string }

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** SIGKILLed and rejected after this long (default 120 s). */
  timeoutMs?: number;
  /** Holds the child while it runs, for a test's `after` to kill what a failed test left. */
  children?: Set<ChildProcess>;
}

/** Runs a command to its end and collects its output. */
export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    opts.children?.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs / 1000} s:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); opts.children?.delete(p); reject(e); });
    p.on('close', (code) => { clearTimeout(timer); opts.children?.delete(p); resolve({ code, stdout, stderr }); });
    if (opts.input !== undefined) p.stdin!.end(opts.input);
  });
}
