// The CLI's VM-state commands (snapshot, suspend, resize, screenshot) as a user runs them: `node bin/grove`
// child processes against the real daemon and the real guest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { REPO_ROOT, READY_LINE, guestFiles } from '../helpers/guest.js';
import { runCommand, type RunResult } from '../helpers/run.js';

let d: TestDaemon;
let scratch: string;
before(async () => { d = await startDaemon(); scratch = mkdtempSync(join(tmpdir(), 'grove-cli-state-')); });
after(async () => { await d?.cleanup(); rmSync(scratch, { recursive: true, force: true }); });

function grove(...args: string[]): Promise<RunResult> {
  return runCommand(process.execPath, [join(REPO_ROOT, 'bin', 'grove'), ...args], { env: { ...process.env, GROVE_URL: d.url, GROVE_TOKEN: d.token }, cwd: scratch });
}

async function ok(...args: string[]): Promise<string> {
  const r = await grove(...args);
  assert.equal(r.code, 0, `grove ${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('snapshot create/ls/restore/rm, screenshot, suspend/resume and resize from the CLI', async () => {
  const g = guestFiles();
  await ok('create', 'st', '--kernel', 'vmlinuz', '--initrd', 'initramfs.gz', '--cmdline', g.cmdline, '--memory', '256', '--disk', '1');
  await ok('start', 'st', '--wait-for', READY_LINE);
  await ok('exec', 'st', '--', 'sh', '-c', 'echo one > /tmp/m');
  assert.match(await ok('snapshot', 'create', 'st', 'first', '--description', 'marker one'), /live snapshot 'first'/);
  const listed = JSON.parse(await ok('snapshot', 'ls', 'st', '--json'));
  assert.deepEqual(listed.map((s: { name: string }) => s.name), ['first']);
  assert.match(await ok('snapshot', 'ls', 'st'), /^NAME\s+KIND/);
  await ok('exec', 'st', '--', 'sh', '-c', 'echo two > /tmp/m');
  assert.match(await ok('snapshot', 'restore', 'st', 'first'), /is running/);
  assert.equal(await ok('exec', 'st', 'cat /tmp/m'), 'one\n');

  assert.match(await ok('screenshot', 'st', '-o', 'shot.jpg'), /Saved \d+×\d+ JPEG to shot\.jpg/);
  const jpg = readFileSync(join(scratch, 'shot.jpg'));
  assert.deepEqual([...jpg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG file');
  await ok('screenshot', 'st', '--png');
  assert.equal(readFileSync(join(scratch, 'st.png')).subarray(1, 4).toString(), 'PNG');

  assert.match(await ok('resize', 'st', '2'), /now 2 GiB/, 'a disk with snapshots grows');
  await ok('snapshot', 'rm', 'st', 'first');
  assert.equal((await grove('resize', 'st', 'lots')).code, 2, 'usage error');

  assert.match(await ok('suspend', 'st'), /Suspended VM 'st'/);
  await ok('start', 'st');
  assert.equal(await ok('exec', 'st', 'cat /tmp/m'), 'one\n');
  const missing = await grove('snapshot', 'restore', 'st', 'nope');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /NOT_FOUND/);

  // A clone of the running VM, under a given name and under the default one.
  assert.match(await ok('clone', 'st', 'st-copy'), /Cloned 'st' as 'st-copy'/);
  const dflt = JSON.parse(await ok('clone', 'st', '--json'));
  assert.deepEqual([dflt.name, dflt.state], ['st-clone', 'stopped']);
  const dup = await grove('clone', 'st', 'st-copy');
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /CONFLICT/);
  await ok('start', 'st-copy', '--wait-for', READY_LINE);
  assert.equal(await ok('exec', 'st-copy', 'test -d /mnt/disk && echo disk'), 'disk\n');
  for (const vm of ['st', 'st-copy', 'st-clone']) await ok('rm', vm, '--force');
});
