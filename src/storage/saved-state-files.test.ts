import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataLayout } from '../app/layout.js';
import { SAVED_STATE_VERSION, parseSavedStateMeta, resumable } from '../domain/saved-state.js';
import { DomainError } from '../domain/errors.js';
import { FsSavedStateFiles } from './saved-state-files.js';
import { FsVmFiles } from './vm-files.js';

let root = '';
let layout: DataLayout;
const files = new FsSavedStateFiles();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'grove-saved-'));
  layout = new DataLayout(root);
  await new FsVmFiles().makeDir(layout.vmDir('a'));
});
after(async () => { await rm(root, { recursive: true, force: true }); });

test('the meta file is written with the format version and read back with the state size', async () => {
  const paths = layout.vmPaths('a');
  await files.writeMeta(paths, { version: SAVED_STATE_VERSION, runState: 'paused', savedAt: '2024-01-02T03:04:05.000Z' });
  assert.deepEqual(JSON.parse(await readFile(paths.savedStateMeta, 'utf8')), { version: 1, runState: 'paused', savedAt: '2024-01-02T03:04:05.000Z' });
  assert.equal(await files.read(paths), null, 'no state.bin yet: nothing to resume');
  await writeFile(paths.savedState, Buffer.alloc(1000));
  assert.deepEqual(await files.read(paths), { version: 1, runState: 'paused', savedAt: '2024-01-02T03:04:05.000Z', bytes: 1000 });
  await files.consume(paths, layout.consumedState('a'));
  assert.equal(await files.read(paths), null);
});

test('a meta file from before the version field is version 1; damaged ones are no saved state', () => {
  assert.deepEqual(parseSavedStateMeta({ runState: 'running', savedAt: 'x' }), { version: 1, runState: 'running', savedAt: 'x' });
  assert.equal(parseSavedStateMeta({ version: 1, runState: 'sleeping', savedAt: 'x' }), null);
  assert.equal(parseSavedStateMeta({ version: 0, runState: 'running', savedAt: 'x' }), null);
  assert.equal(parseSavedStateMeta({ version: '2', runState: 'running', savedAt: 'x' }), null);
  assert.equal(parseSavedStateMeta([]), null);
});

test('where the forwards were aimed is kept when it is an IPv4 address; anything else there is a damaged file', () => {
  assert.deepEqual(parseSavedStateMeta({ version: 1, runState: 'paused', savedAt: 'x', forwardsTo: '10.0.2.16' }), { version: 1, runState: 'paused', savedAt: 'x', forwardsTo: '10.0.2.16' });
  assert.equal(parseSavedStateMeta({ version: 1, runState: 'paused', savedAt: 'x', forwardsTo: '10.0.2.16 -; quit' }), null);
  assert.equal(parseSavedStateMeta({ version: 1, runState: 'paused', savedAt: 'x', forwardsTo: 16 }), null);
  const saved = { version: 1, runState: 'running' as const, savedAt: 'x', forwardsTo: '10.0.2.16', bytes: 3 };
  assert.deepEqual(resumable(saved, 'vm'), saved);
});

test('a newer format is read as such (only its version trusted) and refused for resuming with both versions named', async () => {
  const paths = layout.vmPaths('a');
  await writeFile(paths.savedStateMeta, JSON.stringify({ version: 7, state: 'whatever' }));
  await writeFile(paths.savedState, Buffer.alloc(10));
  const saved = await files.read(paths);
  assert.deepEqual(saved, { version: 7, runState: null, savedAt: null, bytes: 10 });
  assert.throws(() => resumable(saved!, 'web'), (e: unknown) => e instanceof DomainError && e.code === 'CONFLICT'
    && e.message === "VM 'web' was suspended by a newer Grove (saved-state format 7; this Grove reads up to 1): resume it with that version, or force-stop it to discard the saved state");
  await files.discard(paths);
  assert.equal(await files.read(paths), null);
});
