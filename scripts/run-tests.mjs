#!/usr/bin/env node
// Runs the compiled tests: unit tests beside the sources (dist/src/**) and end-to-end tests (dist/test/e2e/**).
// One file at a time: the e2e files each start a real daemon and real QEMU, and the machine has 2 cores.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const which = process.argv[2] ?? 'all';
const roots = { unit: ['dist/src'], e2e: ['dist/test/e2e'], all: ['dist/src', 'dist/test/e2e'] }[which];
if (!roots) { console.error(`usage: run-tests.mjs [unit|e2e|all]`); process.exit(2); }

function find(dir) {
  let out = [];
  let entries = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = roots.flatMap(find);
if (files.length === 0) { console.error('no test files found; did the build run?'); process.exit(1); }
const extra = process.env.GROVE_TEST_ARGS ? process.env.GROVE_TEST_ARGS.split(' ') : [];
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=600000', ...extra, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
