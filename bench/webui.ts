import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WEB_DIR } from '../src/api/rest/web-routes.js';
import { createBenchVms } from './lib/ab.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { fmtMs, median, resultLine, type BenchResult } from './lib/stats.js';

export interface WebUiOptions { vms: number; paints: number; starts: number }
export const WEBUI_DEFAULTS: WebUiOptions = { vms: 100, paints: 10, starts: 5 };

const CHROMIUM = process.env['GROVE_CHROMIUM'] ?? '/usr/bin/chromium';

/** Bytes of the built UI as a browser downloads it with gzip (index.html, JS, CSS; not source maps). */
export function gzippedAssetBytes(dir = WEB_DIR): { raw: number; gzip: number; files: number } {
  const files = [join(dir, 'index.html'), ...readdirSync(join(dir, 'assets')).filter((f) => /\.(js|css)$/.test(f)).map((f) => join(dir, 'assets', f))];
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const b = readFileSync(f);
    raw += b.length;
    gzip += gzipSync(b, { level: 9 }).length;
  }
  return { raw, gzip, files: files.length };
}

/**
 * (w) The web UI in Chromium (Debian's package, headless) against the in-process daemon with 100 VMs:
 *  - first paint of the VM list: navigation start → the list's rows are in the DOM and a frame has been
 *    painted (the page's `grove:vm-list-painted` mark, then one requestAnimationFrame), on a fresh load;
 *    the reference is the page's own fetch of GET /api/v1/vms (the data alone);
 *  - vm.started → row: from the event's arrival in the page (mark in live.ts) to the row's data-state
 *    turning `running` (MutationObserver), over `starts` starts of a stopped VM;
 *  - the gzipped size of the built assets.
 */
export async function benchWebUi(o: WebUiOptions = WEBUI_DEFAULTS): Promise<BenchResult[]> {
  const bd = await startBenchDaemon('webui');
  await createBenchVms(bd, o.vms);
  const origin = bd.api.replace(/\/api\/v1$/, '');
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  onCleanup('chromium', () => browser.close());
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${origin}/`);
  await page.getByLabel('API token').fill(bd.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('tr[data-vm]').nth(o.vms - 1).waitFor();

  const paints: number[] = [];
  const fetches: number[] = [];
  for (let i = 0; i < o.paints + 1; i++) {
    await page.goto(`${origin}/?r=${i}#/vms`);
    // In-page code as text: this file is compiled against Node's types, not the DOM's.
    const ms = await page.evaluate<number>(`new Promise((resolve) => {
      const check = () => {
        if (performance.getEntriesByName('grove:vm-list-painted')[0]) requestAnimationFrame(() => resolve(performance.now()));
        else setTimeout(check, 5);
      };
      check();
    })`);
    const f = await page.evaluate(async () => { const t0 = performance.now(); await (await fetch('/api/v1/vms')).json(); return performance.now() - t0; });
    const rows = await page.locator('tr[data-vm]').count();
    if (rows !== o.vms) throw new Error(`the list shows ${rows} rows, expected ${o.vms}`);
    if (i > 0) { paints.push(ms); fetches.push(f); } // the first load warms the daemon and the browser cache
  }

  const latencies: number[] = [];
  for (let i = 0; i < o.starts; i++) {
    const name = `bench-${String(i).padStart(3, '0')}`;
    const wait = page.evaluate<number>(`new Promise((resolve, reject) => {
      const row = document.querySelector('tr[data-vm="${name}"]');
      if (!row) { reject(new Error('no row ${name}')); return; }
      const obs = new MutationObserver(() => {
        if (row.getAttribute('data-state') !== 'running') return;
        obs.disconnect();
        const t = performance.now();
        const ev = performance.getEntriesByName('grove:vm.started').at(-1);
        if (!ev) { reject(new Error('no vm.started mark')); return; }
        resolve(t - ev.startTime);
      });
      obs.observe(row, { attributes: true, attributeFilter: ['data-state'] });
    })`);
    await bd.client.ok('POST', `/vms/${name}/start`, {});
    latencies.push(await wait);
    await bd.client.ok('POST', `/vms/${name}/force-stop`, {});
  }
  await browser.close();
  await bd.close();

  const size = gzippedAssetBytes();
  const paint = median(paints);
  const fetchMs = median(fetches);
  const first = resultLine(`webui first paint (${o.vms} VMs)`, fmtMs(paint), `GET /vms in the page ${fmtMs(fetchMs)}`, paint / fetchMs, null);
  first.details.push(`  runs: ${paints.map(fmtMs).join(' ')}`);
  const lat = median(latencies);
  const row = resultLine('webui vm.started → row', fmtMs(lat), 'no reference (event arrival in the page)', 1, null);
  row.details.push(`  runs: ${latencies.map(fmtMs).join(' ')}`);
  const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  const assets = resultLine('webui assets', `${kib(size.gzip)} gzipped`, `${kib(size.raw)} raw, ${size.files} files`, size.gzip / size.raw, null);
  return [first, row, assets];
}
