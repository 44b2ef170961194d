/**
 * The npm package: `npm pack` of this checkout, installed with `npm install -g` into a prefix of the test's
 * own (runtime dependencies only, from the npm cache `npm ci` filled, else the registry), then the
 * installed `grove` serves: the API, the docs bundle, the shipped catalog.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/daemon.js';
import { REPO_ROOT } from '../helpers/guest.js';
import { runCommand } from '../helpers/run.js';

let scratch: string;
before(() => { scratch = mkdtempSync(join(tmpdir(), 'grove-package-e2e-')); });
after(() => { if (scratch) rmSync(scratch, { recursive: true, force: true }); });

test('npm pack → npm install -g: grove on PATH, no dev dependencies, and the installed daemon serves', { timeout: 20 * 60_000 }, async () => {
  // --ignore-scripts: the checkout is built already (prepack would rebuild dist while other tests use it).
  const pack = await runCommand('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch, '--json'], { cwd: REPO_ROOT, timeoutMs: 120_000 });
  assert.equal(pack.code, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
  const paths = info.files.map((f) => f.path);
  assert.ok(paths.includes('bin/grove') && paths.includes('dist/src/cli/main.js') && paths.includes('catalog/distros.json'));
  assert.ok(paths.includes('dist/assets/redoc/redoc.standalone.js'), 'the docs bundle is built in');
  assert.ok(paths.includes('dist/web/index.html') && paths.some((p) => /^dist\/web\/assets\/app-.*\.js$/.test(p)), 'the web UI is built in');
  assert.ok(paths.includes('dist/daemon/serve.js') && paths.some((p) => /^dist\/daemon\/mcp-handler-.*\.js$/.test(p)), 'the daemon bundle and its lazily loaded chunks');
  assert.deepEqual(paths.filter((p) => /\.test\.js$|^dist\/(test|bench)\/|^src\/|^test\//.test(p)), [], 'no tests, sources or benchmarks');

  const prefix = join(scratch, 'prefix');
  const install = await runCommand('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(scratch, info.filename)], { timeoutMs: 15 * 60_000 });
  assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);
  const installed = join(prefix, 'lib', 'node_modules', 'grove', 'node_modules');
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  assert.deepEqual(Object.keys(pkg.devDependencies).filter((dep) => existsSync(join(installed, dep))), [], 'no dev dependency installed');
  assert.equal(existsSync(join(installed, 'redoc')), false);

  const grove = join(prefix, 'bin', 'grove');
  const version = await runCommand(grove, ['--version']);
  assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version);

  const data = join(scratch, 'data');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const daemon = spawn(grove, ['serve', '--data-dir', data, '--port', String(port)], { stdio: 'ignore', env: { ...process.env, GROVE_ACCEL: 'tcg' } });
  try {
    const api = `http://127.0.0.1:${port}/api/v1`;
    await waitFor('the installed daemon', async () => (await fetch(`${api}/health`).catch(() => null))?.status === 200, 60_000);
    const token = readFileSync(join(data, 'token'), 'utf8').trim();
    const distros = await (await fetch(`${api}/distros`, { headers: { authorization: `Bearer ${token}` } })).json() as { id: string }[];
    assert.ok(distros.some((x) => x.id === 'debian-12'), 'the shipped catalog');
    const docs = await fetch(`${api}/docs/redoc.standalone.js`);
    assert.equal(docs.status, 200);
    assert.ok((await docs.arrayBuffer()).byteLength > 500_000);
    const ui = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<title>Grove<\/title>/);
    assert.ok(readdirSync(data).includes('grove.db'));
    // The bundle's chunks loaded on first use (npm gives every file one mtime, so bin/grove runs the bundle).
    const auth = { authorization: `Bearer ${token}` };
    const mcp = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(mcp.status, 200);
    assert.ok(((await mcp.json()) as { result: { tools: { name: string }[] } }).result.tools.some((t) => t.name === 'list_vms'));
    const prom = await fetch(`${api}/metrics?format=prometheus`, { headers: auth });
    assert.equal(prom.status, 200);
    assert.match(await prom.text(), /^# TYPE grove_/m);
  } finally {
    daemon.kill('SIGTERM');
  }
});
