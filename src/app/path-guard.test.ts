import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainError } from '../domain/errors.js';
import { resolveAllowedPath, resolveNewFileIn } from './path-guard.js';

function sandbox() {
  const root = mkdtempSync(join(tmpdir(), 'grove-guard-'));
  const allowed = join(root, 'transfer');
  const outside = join(root, 'outside');
  mkdirSync(allowed);
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'x');
  writeFileSync(join(allowed, 'here'), 'x');
  return { root, allowed, outside, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Code, field and the detail with the caller's path taken out: what an answer says about the host. */
async function answer(p: Promise<unknown>, userPath: string): Promise<{ code: string; field: unknown; detail: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DomainError, String(e));
    return { code: e.code, field: e.extra['field'], detail: e.message.replace(userPath, '<path>') };
  }
  throw new Error(`'${userPath}' was accepted`);
}

test('reading: an existing file outside the allowed folders and a missing one get the same answer', async () => {
  const s = sandbox();
  try {
    symlinkSync(join(s.outside, 'missing'), join(s.allowed, 'dangling'));
    symlinkSync(join(s.outside, 'nodir', 'x'), join(s.allowed, 'dangling2'));
    const existing = await answer(resolveAllowedPath(join(s.outside, 'secret'), [s.allowed], 'path'), join(s.outside, 'secret'));
    assert.equal(existing.code, 'FORBIDDEN_PATH');
    for (const p of [join(s.outside, 'missing'), join(s.outside, 'nodir', 'x'), '/no/such/dir/file', '../outside/missing', 'dangling', 'dangling2', join(s.outside, 'secret', 'x')]) {
      assert.deepEqual(await answer(resolveAllowedPath(p, [s.allowed], 'path'), p), existing, p);
    }
    assert.deepEqual(await answer(resolveAllowedPath('.', [s.allowed], 'path'), '.'), existing, 'the allowed folder itself');
    // Inside the allowed folder a missing file is simply missing.
    assert.equal((await answer(resolveAllowedPath('nope', [s.allowed], 'path'), 'nope')).code, 'VALIDATION_FAILED');
    assert.equal(await resolveAllowedPath('here', [s.allowed], 'path'), join(s.allowed, 'here'));
  } finally {
    s.cleanup();
  }
});

test('writing: a folder outside, existing or not, gets the same answer; a taken name is FILE_EXISTS', async () => {
  const s = sandbox();
  try {
    const existing = await answer(resolveNewFileIn(join(s.outside, 'new.tar'), s.allowed, 'path'), join(s.outside, 'new.tar'));
    assert.equal(existing.code, 'FORBIDDEN_PATH');
    for (const p of [join(s.outside, 'nodir', 'new.tar'), '/no/such/dir/new.tar', '../outside/nodir/new.tar']) {
      assert.deepEqual(await answer(resolveNewFileIn(p, s.allowed, 'path'), p), existing, p);
    }
    assert.equal((await answer(resolveNewFileIn('nodir/new.tar', s.allowed, 'path'), 'nodir/new.tar')).code, 'VALIDATION_FAILED');
    assert.equal((await answer(resolveNewFileIn('here', s.allowed, 'path'), 'here')).code, 'FILE_EXISTS');
    assert.equal(await resolveNewFileIn('new.tar', s.allowed, 'path'), join(s.allowed, 'new.tar'));
  } finally {
    s.cleanup();
  }
});
