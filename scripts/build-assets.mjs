#!/usr/bin/env node
// Copies the prebuilt browser files the daemon serves into dist/assets, at build time: the runtime package
// then needs none of the packages they come from (Redoc alone brings about a hundred).
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const out = join(dirname(new URL(import.meta.url).pathname), '..', 'dist', 'assets', 'redoc');
mkdirSync(out, { recursive: true });
for (const f of ['redoc.standalone.js', 'redoc.standalone.js.LICENSE.txt']) {
  copyFileSync(require.resolve(`redoc/bundles/${f}`), join(out, f));
}
