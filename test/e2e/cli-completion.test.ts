/**
 * End to end: the completion scripts of `grove completion bash|zsh|fish` in the real shells — zsh typing
 * TAB in a pseudo-terminal with compinit (sourced, and autoloaded from $fpath), fish's `complete -C`,
 * bash's completion function — calling back into `grove __complete` against a real daemon for VM names.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGuestVm, killVmsOf, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { fishComplete, zshComplete } from '../helpers/shells.js';

let d: TestDaemon;
let scratch = '';
/** Where the shells run: one file to complete, bundle.tar. */
let work = '';
const scripts = { bash: '', zsh: '', fish: '', zshFpath: '' };

/** The shells' environment: `grove` on PATH (a wrapper of bin/grove) speaking to the test daemon. */
function env(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(GROVE_|NEMETON_|XDG_)/.test(k)) out[k] = v;
  return {
    ...out, HOME: join(scratch, 'home'), XDG_CONFIG_HOME: join(scratch, 'config'), GROVE_URL: d.url, GROVE_TOKEN: d.token,
    PATH: `${join(scratch, 'bin')}:${process.env['PATH'] ?? ''}`,
  };
}

const zsh = (line: string, mode: 'source' | 'fpath' = 'source') =>
  zshComplete(mode === 'source' ? scripts.zsh : scripts.zshFpath, line, { env: env(), cwd: work, mode });
const zshWords = async (line: string, mode: 'source' | 'fpath' = 'source') => (await zsh(line, mode)).map((m) => m.word).sort();
const fish = async (line: string) => (await fishComplete(scripts.fish, line, { env: env(), cwd: work })).sort();

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'grove-completion-'));
  for (const dir of ['home', 'bin', 'work', 'fpath']) mkdirSync(join(scratch, dir));
  work = join(scratch, 'work');
  writeFileSync(join(work, 'bundle.tar'), '');
  const grove = join(scratch, 'bin', 'grove');
  writeFileSync(grove, `#!/bin/sh\nexec "${process.execPath}" "${join(REPO_ROOT, 'bin', 'grove')}" "$@"\n`, { mode: 0o755 });
  for (const shell of ['bash', 'zsh', 'fish'] as const) {
    scripts[shell] = join(scratch, `grove.${shell}`);
    writeFileSync(scripts[shell], execFileSync(grove, ['completion', shell]));
  }
  scripts.zshFpath = join(scratch, 'fpath', '_grove');
  writeFileSync(scripts.zshFpath, execFileSync(grove, ['completion', 'zsh']));
  d = await startDaemon();
  await createGuestVm(d, 'comp-alpha');
  await createGuestVm(d, 'comp-beta');
});

after(async () => {
  if (d) {
    try { await d.cleanup(); } finally { killVmsOf(d.dataDir); }
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ---- syntax ----------------------------------------------------------------------------------------

test('zsh -n accepts the zsh script', () => {
  execFileSync('zsh', ['-n', scripts.zsh]);
});

test('fish --no-execute accepts the fish script', () => {
  execFileSync('fish', ['--no-execute', scripts.fish]);
});

// ---- zsh ---------------------------------------------------------------------------------------------

test('zsh: a command name', async () => {
  assert.deepEqual(await zsh('grove sta'), [{ word: 'start', suffix: ' ' }]);
});

test('zsh: the flags of one command', async () => {
  assert.deepEqual(await zshWords('grove stop --t'), ['--timeout', '--token']);
});

test('zsh: VM names from the daemon', async () => {
  assert.deepEqual(await zshWords('grove start comp-'), ['comp-alpha', 'comp-beta']);
});

test('zsh: a remote prefix goes on without a space', async () => {
  assert.deepEqual(await zsh('grove show loc'), [{ word: 'local:', suffix: '' }]);
});

test('zsh: REMOTE:VM from that remote', async () => {
  assert.deepEqual(await zshWords('grove show local:comp-a'), ['local:comp-alpha']);
});

test('zsh: a flag value written --flag=value', async () => {
  assert.deepEqual(await zshWords('grove ls --format=y'), ['--format=yaml']);
});

test('zsh: a file where grove knows no word', async () => {
  assert.deepEqual(await zshWords('grove import bun'), ['bundle.tar']);
});

test('zsh: the script saved as _grove in $fpath (autoloaded by compinit)', async () => {
  assert.deepEqual(await zshWords('grove sta', 'fpath'), ['start']);
});

// ---- fish --------------------------------------------------------------------------------------------

test('fish: a command name', async () => {
  assert.deepEqual(await fish('grove sta'), ['start']);
});

test('fish: the flags of one command', async () => {
  assert.deepEqual(await fish('grove stop --t'), ['--timeout', '--token']);
});

test('fish: VM names from the daemon', async () => {
  assert.deepEqual(await fish('grove start comp-'), ['comp-alpha', 'comp-beta']);
});

test('fish: REMOTE:VM from that remote', async () => {
  assert.deepEqual(await fish('grove show local:comp-a'), ['local:comp-alpha']);
});

test('fish: a flag value written --flag=value', async () => {
  assert.deepEqual(await fish('grove ls --format=y'), ['--format=yaml']);
});

test('fish: a file where grove knows no word', async () => {
  assert.deepEqual(await fish('grove import bun'), ['bundle.tar']);
});

// ---- bash --------------------------------------------------------------------------------------------

test('bash: a flag value written --flag=value (bash splits the word at =)', () => {
  const out = execFileSync('bash', ['-c', `source ${scripts.bash}; COMP_LINE='grove ls --format=y'; COMP_POINT=\${#COMP_LINE}; _grove_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    env: env(), cwd: work,
  }).toString();
  assert.equal(out, 'yaml\n');
});
