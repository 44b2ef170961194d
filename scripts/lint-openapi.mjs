#!/usr/bin/env node
// Lints the OpenAPI document Grove serves with Redocly CLI (the `recommended` ruleset: spec violations are
// errors, style advice is warnings). Exits non-zero when there are errors.
//
//   node scripts/lint-openapi.mjs                 start a throw-away daemon (needs `npm run build`), lint its document
//   node scripts/lint-openapi.mjs --url URL       lint the document of a running daemon (e.g. http://127.0.0.1:22100)
//   node scripts/lint-openapi.mjs --file DOC      lint a saved document
//   options: --out FILE (keep the fetched document), --strict (warnings are errors too),
//            --format stylish|codeframe|json|... (Redocly output format, default stylish)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REDOCLY = join(ROOT, 'node_modules', '.bin', 'redocly');

function fail(message, code = 2) {
  process.stderr.write(`lint-openapi: ${message}\n`);
  process.exit(code);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      file: { type: 'string' },
      out: { type: 'string' },
      strict: { type: 'boolean', default: false },
      format: { type: 'string', default: 'stylish' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  }));
} catch (e) {
  fail(e.message);
}
if (args.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 9).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
if (args.url && args.file) fail('give --url or --file, not both');
if (!existsSync(REDOCLY)) fail(`${REDOCLY} not found: install the dev dependencies (npm ci)`);

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function fetchDoc(base) {
  const r = await fetch(`${base.replace(/\/+$/, '')}/api/v1/openapi.json`, { signal: AbortSignal.timeout(15_000) });
  if (!r.ok) throw new Error(`GET ${base}/api/v1/openapi.json: HTTP ${r.status}`);
  return r.json();
}

/** A daemon of our own on a free loopback port, with a throw-away data dir; stopped before linting. */
async function docFromOwnDaemon() {
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js'))) fail('dist/ is missing: run `npm run build` first');
  const dataDir = mkdtempSync(join(tmpdir(), 'grove-lint-openapi-'));
  const port = await freePort();
  let out = '';
  const proc = spawn(process.execPath, [join(ROOT, 'bin', 'grove'), 'serve', '--port', String(port), '--data-dir', dataDir], {
    env: { ...process.env, GROVE_LOG_LEVEL: 'warn', GROVE_TOKEN: randomBytes(32).toString('base64url'), GROVE_ACCEL: process.env.GROVE_ACCEL ?? 'tcg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`grove serve exited with ${proc.exitCode}:\n${out}`);
      try {
        if ((await fetch(`${base}/api/v1/health`)).ok) break;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`grove serve did not come up within 20 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return await fetchDoc(base);
  } finally {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

let doc;
let source;
try {
  if (args.file) {
    source = resolve(args.file);
    doc = JSON.parse(readFileSync(source, 'utf8'));
  } else if (args.url) {
    source = `${args.url}/api/v1/openapi.json`;
    doc = await fetchDoc(args.url);
  } else {
    source = 'a throw-away `grove serve`';
    doc = await docFromOwnDaemon();
  }
} catch (e) {
  fail(e.message);
}

const work = args.out ? null : mkdtempSync(join(tmpdir(), 'grove-openapi-'));
const file = args.out ? resolve(args.out) : join(work, 'openapi.json');
writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
const ops = Object.values(doc.paths ?? {}).reduce((n, p) => n + Object.keys(p).filter((m) => ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'].includes(m)).length, 0);
process.stderr.write(`Linting OpenAPI ${doc.openapi ?? '?'} "${doc.info?.title ?? '?'}" ${doc.info?.version ?? ''} (${ops} operations) from ${source}\n`);

const ruleset = args.strict ? 'recommended-strict' : 'recommended';
const code = await new Promise((res) => {
  const p = spawn(REDOCLY, ['lint', file, '--extends', ruleset, '--format', args.format, '--max-problems', '1000'], {
    cwd: ROOT,
    stdio: 'inherit',
    // No telemetry, no update check: this runs offline in CI.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  p.on('error', (e) => { process.stderr.write(`lint-openapi: ${e.message}\n`); res(2); });
  p.on('exit', (c, sig) => res(c ?? (sig ? 1 : 0)));
});
if (work) rmSync(work, { recursive: true, force: true });
process.exit(code);
