// The screen tab (noVNC over GET /vms/:id/vnc) in Chromium against the real daemon and QEMU (TCG).
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/webui-screen.test.js
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createGuestVm, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { execute, readConsole, startReady, waitForConsole } from '../helpers/api.js';
import { launchBrowser, shot, signIn, typeOnKeyboard } from '../helpers/browser.js';

const VM = 'screen-guest';

/** Count of lit pixels in noVNC's canvas: the VGA text console is white-ish on black. */
async function litPixels(page: Page): Promise<number> {
  return page.locator('.screen canvas').evaluate((c) => {
    const canvas = c as unknown as { width: number; height: number; getContext(k: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 300) n++;
    return n;
  });
}

describe('web UI screen tab in Chromium', () => {
  let d: TestDaemon;
  let browser: Browser;
  let page: Page;

  before(async () => {
    d = await startDaemon();
    // The test guest's shell is on ttyS0; the kernel's VGA console (tty1) is what the screen shows.
    await createGuestVm(d, VM, { cmdline: 'console=tty0 console=ttyS0 panic=-1' });
    await startReady(d, VM, { acpi: false });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page, d.url, d.token);
  });
  after(async () => {
    await browser?.close();
    await d?.cleanup();
  });

  it('shows the guest\'s screen live and its text appears', async () => {
    await page.goto(`${d.url}/#/vm/${VM}/screen`);
    await page.locator('.screen-tab .muted', { hasText: 'live' }).waitFor({ timeout: 30_000 });
    await execute(d, VM, 'clear >/dev/tty1; printf "\\033[2J" >/dev/tty1');
    const blank = await waitFor('the cleared screen', async () => { const n = await litPixels(page); return n < 50 ? n + 1 : false; });
    await execute(d, VM, 'for i in $(seq 1 20); do echo "GROVE SCREEN TEXT LINE $i ################" >/dev/tty1; done');
    const lit = await waitFor('text on the screen', async () => { const n = await litPixels(page); return n > blank + 2000 ? n : false; });
    assert.ok(lit > blank + 2000);
    await shot(page, 'webui-screen-text');
  });

  it('sends keys through the screen to a shell on the VGA console, with Shift for capitals and symbols', async () => {
    // A second shell, reading the VGA console's keyboard (tty1), beside the test guest's serial one.
    await execute(d, VM, "setsid sh -c 'exec sh <>/dev/tty1 >&0 2>&1' &");
    const since = (await readConsole(d, VM)).nextOffset;
    await page.locator('.screen canvas').click();
    // Its output goes to the serial console, read back through the API: the effect of the typed keys.
    await typeOnKeyboard(page, 'echo Screen-KEYS-$((6*7)) >/dev/ttyS0\n');
    const out = await waitForConsole(d, VM, 'Screen-KEYS-42', since, 30_000);
    assert.match(out, /Screen-KEYS-42/);
    await shot(page, 'webui-screen-keys');
  });
});
