import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './guest.js';

/** Debian's chromium package (installed by `make test`); playwright-core never downloads a browser. */
export const CHROMIUM = process.env['GROVE_CHROMIUM'] ?? '/usr/bin/chromium';
export const RESULTS = join(REPO_ROOT, 'test-results');

export async function launchBrowser(): Promise<Browser> {
  // Tests run as root on CI, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A screenshot of the page for review, under test-results/ (gitignored). */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
}

export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Virtual machines' }).waitFor();
}
