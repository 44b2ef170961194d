// The web UI in a real browser (Chromium via playwright-core) against the real daemon and real QEMU (TCG):
// sign in, create a VM from the test guest, watch it start without reloading, use the serial terminal,
// take and restore a snapshot, sign out. Each step leaves a screenshot in test-results/.
// Run: GROVE_ACCEL=tcg node --test --test-concurrency=1 dist/test/e2e/webui.test.js
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { READY_LINE, guestFiles } from '../helpers/guest.js';
import { assertOk, execute, waitAcpiReady, waitForConsole } from '../helpers/api.js';
import { launchBrowser, shot, signIn } from '../helpers/browser.js';

const VM = 'web-guest';

describe('web UI in Chromium', () => {
  let d: TestDaemon;
  let browser: Browser;
  let page: Page;
  /** Script errors and console errors (a CSP violation is one) anywhere in the run. */
  const pageErrors: string[] = [];

  before(async () => {
    d = await startDaemon();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('dialog', (dlg) => { dlg.accept().catch(() => undefined); });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  });
  after(async () => {
    await browser?.close();
    await d?.cleanup();
  });

  it('signs in with the token', async () => {
    await page.goto(`${d.url}/`);
    await page.getByRole('heading', { name: 'Sign in to Grove' }).waitFor();
    await shot(page, 'webui-signin');
    await signIn(page, d.url, d.token);
    const cookies = await page.context().cookies();
    const c = cookies.find((k) => k.name === 'grove_session');
    assert.ok(c, 'session cookie set');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    await shot(page, 'webui-list-empty');
  });

  it('creates a VM from the test guest', async () => {
    await page.getByRole('link', { name: 'Create', exact: true }).click();
    await page.getByLabel('Name').fill(VM);
    await page.getByLabel('Boot from').selectOption('kernel');
    await page.getByLabel('Kernel', { exact: true }).fill('vmlinuz');
    await page.getByLabel('Initrd').fill('initramfs.gz');
    await page.getByLabel('Kernel command line').fill(guestFiles().cmdline);
    await page.getByLabel('Memory (MiB)').fill('256');
    await page.getByLabel('Disk (GiB)').fill('1');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('heading', { name: new RegExp(`^${VM}`) }).waitFor();
    const r = await d.call('GET', `/vms/${VM}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.state, 'stopped');
    await shot(page, 'webui-created');
  });

  it('starts it from the list and the row changes without a reload', async () => {
    await page.getByRole('link', { name: 'VMs', exact: true }).click();
    const row = page.locator(`tr[data-vm="${VM}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'stopped');
    // A marker on window survives only if the page is not reloaded.
    await page.evaluate(() => { (globalThis as unknown as { marker: number }).marker = 42; });
    await row.getByRole('button', { name: `Start ${VM}` }).click();
    await page.locator(`tr[data-vm="${VM}"][data-state="running"]`).waitFor({ timeout: 60_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 42);
    await shot(page, 'webui-list-running');
  });

  it('types a command into the serial terminal and reads its output', async () => {
    await waitForConsole(d, VM, READY_LINE, 0, 90_000);
    await page.getByRole('link', { name: VM }).click();
    await page.getByRole('tab', { name: 'Terminal' }).waitFor();
    await page.locator('.terminal-tab .muted', { hasText: 'connected' }).waitFor();
    await page.locator('.term .xterm').click();
    await page.keyboard.type('echo WEB-$((6*7))');
    await page.keyboard.press('Enter');
    // The echo of the command has $((6*7)); only the shell's output reads WEB-42.
    await page.locator('.term .xterm-rows', { hasText: 'WEB-42' }).waitFor({ timeout: 30_000 });
    await shot(page, 'webui-terminal');
  });

  it('takes a snapshot and restores it', async () => {
    await waitAcpiReady(d, VM);
    await page.getByRole('tab', { name: 'Snapshots' }).click();
    await page.getByLabel('Name').fill('before');
    await page.getByRole('button', { name: 'Take snapshot' }).click();
    await page.locator('tr[data-snapshot="before"]').waitFor({ timeout: 120_000 });
    await shot(page, 'webui-snapshot-taken');
    const made = await execute(d, VM, 'touch /tmp/after-snapshot && echo MADE-$((6*7))');
    assert.match(made.output, /MADE-42/);
    await page.getByRole('button', { name: 'Restore before' }).click();
    await page.getByRole('status').filter({ hasText: 'Restore before: done' }).waitFor({ timeout: 120_000 });
    const gone = await execute(d, VM, 'test -e /tmp/after-snapshot && echo STILL-$((6*7)) || echo GONE-$((6*7))');
    assert.match(gone.output, /GONE-42/);
    await shot(page, 'webui-snapshot-restored');
  });

  it('every page and tab renders without a script or CSP error', async () => {
    const before = pageErrors.length;
    for (const [link, heading] of [['Downloads', 'Downloads'], ['Host', 'Host'], ['Webhooks', 'Webhooks'], ['Create', 'Create VM']] as const) {
      await page.getByRole('link', { name: link, exact: true }).click();
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      if (link === 'Host') {
        await page.locator('dt', { hasText: 'Hostname' }).waitFor();
        // uPlot draws both charts; a second sample puts a line on them.
        assert.equal(await page.locator('.chart .uplot canvas').count(), 2);
        await page.getByRole('status').filter({ hasText: 'Now: CPU' }).waitFor();
      }
      if (link === 'Downloads') await page.getByRole('table', { name: 'Downloads' }).getByText('No downloads').waitFor();
      await shot(page, `webui-page-${link.toLowerCase()}`);
    }
    await page.getByRole('link', { name: 'VMs', exact: true }).click();
    await page.getByRole('link', { name: VM }).click();
    for (const tab of ['Manage', 'Events', 'Settings']) {
      await page.getByRole('tab', { name: tab }).click();
      assert.equal(await page.getByRole('tab', { name: tab }).getAttribute('aria-selected'), 'true');
      // This VM's history is replayed into the tab.
      if (tab === 'Events') await page.locator('.events li', { hasText: 'vm.started' }).first().waitFor();
      if (tab === 'Settings') {
        await page.getByLabel('Start when the daemon starts (autostart)').check();
        await page.getByRole('button', { name: 'Save', exact: true }).click();
        await page.getByRole('status').filter({ hasText: 'Save settings: done' }).waitFor();
        assert.equal(assertOk(await d.call('GET', `/vms/${VM}`), 200, 'get').autostart, true);
      }
      await shot(page, `webui-tab-${tab.toLowerCase()}`);
    }
    // A phone-sized window in the dark theme: the list becomes one card per VM.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: 'Switch light or dark theme' }).click();
    await page.getByRole('link', { name: 'VMs', exact: true }).click();
    await page.locator(`tr[data-vm="${VM}"]`).waitFor();
    await shot(page, 'webui-phone-dark');
    await page.setViewportSize({ width: 1280, height: 800 });
    assert.deepEqual(pageErrors.slice(before), []);
  });

  it('signs out, and the session is refused', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Grove' }).waitFor();
    const status = await page.evaluate(async () => (await fetch('/api/v1/vms')).status);
    assert.equal(status, 401);
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to Grove' }).waitFor();
    await shot(page, 'webui-signed-out');
  });
});
