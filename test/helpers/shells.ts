/**
 * Completion as the real shells do it: zsh in a pseudo-terminal (zpty) typing a line and TAB with
 * compinit loaded, fish answering `complete -C LINE`. Both run the script `grove completion SHELL`
 * printed, which calls back into the `grove` found on PATH.
 */
import { join } from 'node:path';
import { REPO_ROOT } from './guest.js';
import { runCommand } from './run.js';

/** The zpty harness (see its header): a zsh file in the source tree, beside this one. */
const CAPTURE_ZSH = join(REPO_ROOT, 'test', 'helpers', 'zsh-capture.zsh');

export interface Match { word: string; suffix: string }

/** What zsh offers on TAB after `line`, with the completion script loaded as `mode` says. */
export async function zshComplete(script: string, line: string, opts: { env: NodeJS.ProcessEnv; cwd: string; mode?: 'source' | 'fpath' }): Promise<Match[]> {
  const r = await runCommand('zsh', ['-f', CAPTURE_ZSH, opts.mode ?? 'source', script, line], { env: opts.env, cwd: opts.cwd, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`zsh capture of '${line}' exited ${r.code}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => {
    const m = /^(.*)\|(.*)\|$/s.exec(l);
    if (!m) throw new Error(`unexpected capture line '${l}'`);
    return { word: m[1]!, suffix: m[2]! };
  });
}

/** What fish offers for `line` (`complete -C`), the candidates only (no descriptions). */
export async function fishComplete(script: string, line: string, opts: { env: NodeJS.ProcessEnv; cwd: string }): Promise<string[]> {
  const r = await runCommand('fish', ['--no-config', '-c', 'source $argv[1]; complete -C $argv[2]', script, line], { env: opts.env, cwd: opts.cwd, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`fish complete -C '${line}' exited ${r.code}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]!);
}
