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

/** The US-layout key (KeyboardEvent.code) of each character typed with Shift held. */
const SHIFTED: Record<string, string> = {
  '~': 'Backquote', '!': 'Digit1', '@': 'Digit2', '#': 'Digit3', '$': 'Digit4', '%': 'Digit5', '^': 'Digit6',
  '&': 'Digit7', '*': 'Digit8', '(': 'Digit9', ')': 'Digit0', '_': 'Minus', '+': 'Equal', '{': 'BracketLeft',
  '}': 'BracketRight', '|': 'Backslash', ':': 'Semicolon', '"': 'Quote', '<': 'Comma', '>': 'Period', '?': 'Slash',
};

/**
 * Types text as a person does on a US keyboard: Shift held down for capitals and shifted symbols.
 * `page.keyboard.type('K')` sends a lone 'K' key event without Shift; noVNC hands QEMU the key's scan code
 * (its extended key event), and the guest, which never saw Shift go down, gets 'k'.
 */
export async function typeOnKeyboard(page: Page, text: string): Promise<void> {
  for (const ch of text) {
    const code = /^[A-Z]$/.test(ch) ? `Key${ch}` : SHIFTED[ch];
    if (code) await page.keyboard.press(`Shift+${code}`);
    else if (ch === '\n') await page.keyboard.press('Enter');
    else await page.keyboard.type(ch);
  }
}
