import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const GUEST_DIR = process.env['GROVE_GUEST_DIR'] ?? join(REPO_ROOT, '.cache', 'test-guest');
export const READY_LINE = 'GROVE-GUEST-READY';

export function guestFiles(): { kernel: string; initrd: string; cmdline: string } {
  const kernel = join(GUEST_DIR, 'vmlinuz');
  const initrd = join(GUEST_DIR, 'initramfs.gz');
  if (!existsSync(kernel) || !existsSync(initrd)) {
    throw new Error(`test guest not built in ${GUEST_DIR}: run 'bash test/guest/build.sh' (make test does)`);
  }
  const cmdline = readFileSync(join(GUEST_DIR, 'cmdline'), 'utf8').trim();
  return { kernel, initrd, cmdline };
}
