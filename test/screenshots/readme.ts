// The README's screenshots of the web UI, taken in Debian's Chromium against a real daemon and real QEMU
// (TCG): the VM list with a few VMs (one running, one paused, two stopped), and a running VM's screen tab.
//   make screenshots      (or, after `npm run build`: GROVE_ACCEL=tcg node dist/test/screenshots/readme.js)
// Writes docs/web-ui.png and docs/web-ui-screen.png.
import { join } from 'node:path';
import { createGuestVm, startDaemon, waitFor } from '../helpers/daemon.js';
import { execute, startReady, waitForState } from '../helpers/api.js';
import { launchBrowser, signIn, typeOnKeyboard } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/guest.js';

const DOCS = join(REPO_ROOT, 'docs');
const d = await startDaemon();
const browser = await launchBrowser();
try {
  await createGuestVm(d, 'web-frontend', { cmdline: 'console=tty0 console=ttyS0 panic=-1', network: { mode: 'user', portForwards: [{ host: 28080, guest: 80 }] } });
  await createGuestVm(d, 'ci-runner', { cpu: 2, memoryMB: 512 });
  await createGuestVm(d, 'db-replica', { memoryMB: 384, diskGB: 4 });
  await createGuestVm(d, 'win11-installer', { cpu: 2, memoryMB: 1024, diskGB: 8, network: { mode: 'none' } });
  await startReady(d, 'web-frontend', { acpi: false });
  await startReady(d, 'ci-runner', { acpi: false });
  const paused = await d.call('POST', '/vms/ci-runner/pause');
  if (paused.status !== 200) throw new Error(`pause: ${paused.status} ${JSON.stringify(paused.body)}`);
  await waitForState(d, 'ci-runner', 'paused');

  const page = await browser.newPage({ viewport: { width: 1280, height: 360 }, deviceScaleFactor: 1 });
  await signIn(page, d.url, d.token);
  await page.locator('tr[data-vm="web-frontend"][data-state="running"]').waitFor({ timeout: 30_000 });
  // CPU % and RSS come from /metrics every 5 s: wait until the running row shows them.
  await waitFor('the running VM\'s figures', async () => /%/.test(await page.locator('tr[data-vm="web-frontend"]').innerText()), 30_000);
  await page.screenshot({ path: join(DOCS, 'web-ui.png') });

  // A shell on the VGA console (the test guest's own is on the serial port), driven through noVNC's keyboard.
  await execute(d, 'web-frontend', "printf '\\033[2J\\033[H' >/dev/tty1; setsid sh -c 'exec sh <>/dev/tty1 >&0 2>&1' &");
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${d.url}/#/vm/web-frontend/screen`);
  await page.locator('.screen-tab .muted', { hasText: 'live' }).waitFor({ timeout: 30_000 });
  await page.locator('.screen canvas').click();
  await typeOnKeyboard(page, 'uname -a; free -m; ls /\n');
  await new Promise((r) => setTimeout(r, 3000)); // the guest runs it, noVNC paints the update
  await page.evaluate('scrollTo(0, 0)'); // clicking the canvas may have scrolled it into view
  await page.screenshot({ path: join(DOCS, 'web-ui-screen.png') });
  console.log(`wrote ${join(DOCS, 'web-ui.png')} and ${join(DOCS, 'web-ui-screen.png')}`);
} finally {
  await browser.close();
  await d.cleanup();
}
